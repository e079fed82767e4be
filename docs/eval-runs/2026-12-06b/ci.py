"""Paired bootstrap CIs of the 2026-12-06b runs against each other and the 2026-12-06 runs.

Usage: python docs/eval-runs/2026-12-06b/ci.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is an ``llmrec-stream eval`` results folder with ``user_ndcg.npz`` (per-user test
NDCG@10, mean over the run's seeds). The 2026-12-06 arrays (EASE, ALS, item-KNN from
``sci-fast``; ours-ce † from ``sci-ours``) are copied under ``inputs/`` because those runs kept
their ``user_ndcg.npz`` outside the repository. The users are the same rows in the same order
(one loader, one file). ``eval.stats.paired_bootstrap``: 10,000 resamples, seed 0. Each model
of a RUN_DIR is compared with EASE, ALS, item-KNN and ours-ce † of 2026-12-06, and ours-ease
with every ours-ce of the given runs.
"""

import sys
from pathlib import Path

import numpy as np

from llmrec_stream.eval.stats import paired_bootstrap

here = Path(__file__).parent
arrays: dict[str, np.ndarray] = {}
for name, label in (("sci-fast", "2026-12-06"), ("sci-ours", "2026-12-06 †")):
    with np.load(here / "inputs" / f"{name}.user_ndcg.npz") as z:
        arrays.update({f"{k.split('/')[1]} ({label})": z[k] for k in z.files})
peers = [f"{m} (2026-12-06)" for m in ("ease", "als", "item-knn")] + ["ours-ce (2026-12-06 †)"]
mine: dict[str, np.ndarray] = {}
for run in sys.argv[1:]:
    with np.load(Path(run) / "user_ndcg.npz") as z:
        mine.update({f"{k.split('/')[1]} ({Path(run).name})": z[k] for k in z.files})
pairs = [(a, b) for a in mine for b in peers]
pairs += [(a, b) for a in mine for b in mine if a.startswith("ours-ease") and
          b.startswith("ours-ce")]
for a, b in pairs:
    ref, other = mine[a], mine.get(b, arrays.get(b))
    assert other is not None and ref.shape == other.shape  # noqa: S101
    ci = paired_bootstrap(ref, other, resamples=10_000)
    print(f"| {a} | {b} | {ci.diff:+.4f} | [{ci.low:+.4f}, {ci.high:+.4f}] "
          f"| {'yes' if ci.significant else 'no'} |")
