"""Paired bootstrap CIs of the 2026-12-06b runs against each other and the 2026-12-06 runs.

Usage: python docs/eval-runs/2026-12-06b/ci.py [--data scientific|beauty] RUN_DIR [RUN_DIR ...]

Each RUN_DIR is an ``llmrec-stream eval`` results folder with ``user_ndcg.npz`` (per-user test
NDCG@10, mean over the run's seeds). The 2026-12-06 arrays are copied into this folder because
those runs kept their ``user_ndcg.npz`` outside the repository: Scientific under ``inputs/``
(EASE, ALS, item-KNN from ``sci-fast``; ours-ce † from ``sci-ours``), Beauty under
``beauty-inputs/`` (EASE from ``beauty-ease``; popularity and item-KNN from ``beauty-fast``,
from ``/tmp/quality/runs/``). The users are the same rows in the same order (one loader, one
file); beside the shape check, the last column is how often the two arrays agree on "hit or
miss" per user, which is high only when the rows are the same users.
``eval.stats.paired_bootstrap``: 10,000 resamples, seed 0. Each model of a RUN_DIR is compared
with the data set's 2026-12-06 peers, and ours-ease with every ours-ce of the given runs.
"""

import sys
from pathlib import Path

import numpy as np

from llmrec_stream.eval.stats import paired_bootstrap

here = Path(__file__).parent
#: Per data set: the folder of copied arrays, (file, label) pairs, and the peers compared
#: with (None: every model in those files).
INPUTS = {
    "scientific": ("inputs", (("sci-fast", "2026-12-06"), ("sci-ours", "2026-12-06 †")),
                   [f"{m} (2026-12-06)" for m in ("ease", "als", "item-knn")]
                   + ["ours-ce (2026-12-06 †)"]),
    "beauty": ("beauty-inputs", (("beauty-ease", "2026-12-06"), ("beauty-fast", "2026-12-06")),
               None),
}
args = sys.argv[1:]
data = "scientific"
if args[:1] == ["--data"]:
    data, args = args[1], args[2:]
folder, files, chosen = INPUTS[data]
arrays: dict[str, np.ndarray] = {}
for name, label in files:
    with np.load(here / folder / f"{name}.user_ndcg.npz") as z:
        arrays.update({f"{k.split('/')[1]} ({label})": z[k] for k in z.files})
peers = list(arrays) if chosen is None else chosen
mine: dict[str, np.ndarray] = {}
for run in args:
    with np.load(Path(run) / "user_ndcg.npz") as z:
        mine.update({f"{k.split('/')[1]} ({Path(run).name})": z[k] for k in z.files})
pairs = [(a, b) for a in mine for b in peers]
pairs += [(a, b) for a in mine for b in mine if a.startswith("ours-ease") and
          b.startswith("ours-ce")]
for a, b in pairs:
    ref, other = mine[a], mine.get(b, arrays.get(b))
    assert other is not None and ref.shape == other.shape  # noqa: S101
    agree = float(np.mean((ref > 0) == (other > 0)))
    ci = paired_bootstrap(ref, other, resamples=10_000)
    print(f"| {a} | {b} | {ci.diff:+.4f} | [{ci.low:+.4f}, {ci.high:+.4f}] "
          f"| {'yes' if ci.significant else 'no'} | hit/miss agreement {agree:.3f} |")
