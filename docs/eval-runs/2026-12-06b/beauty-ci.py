"""Paired bootstrap CIs of the Beauty ours-ease run against the Beauty peers of 2026-12-06.

Usage: python docs/eval-runs/2026-12-06b/beauty-ci.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is an ``llmrec-stream eval`` results folder with ``user_ndcg.npz`` (per-user test
NDCG@10, mean over the run's seeds). The 2026-12-06 Beauty arrays (EASE from ``beauty-ease``;
popularity and item-KNN from ``beauty-fast``) are copied under ``beauty-inputs/`` because those
runs kept their ``user_ndcg.npz`` outside the repository (``/tmp/quality/runs/``). The users
are the same rows in the same order (one loader, one file, ``Beauty.txt``); beside the shape
check, the script prints how often the two arrays agree on "hit or miss" per user, which is
high only when the rows are the same users. ``eval.stats.paired_bootstrap``: 10,000
resamples, seed 0. Every model of a RUN_DIR is compared with every 2026-12-06 Beauty peer, and
ours-ease with every ours-ce of the given runs.
"""

import sys
from pathlib import Path

import numpy as np

from llmrec_stream.eval.stats import paired_bootstrap

here = Path(__file__).parent
peers: dict[str, np.ndarray] = {}
for name in ("beauty-ease", "beauty-fast"):
    with np.load(here / "beauty-inputs" / f"{name}.user_ndcg.npz") as z:
        peers.update({f"{k.split('/')[1]} (2026-12-06)": z[k] for k in z.files})
mine: dict[str, np.ndarray] = {}
for run in sys.argv[1:]:
    with np.load(Path(run) / "user_ndcg.npz") as z:
        mine.update({f"{k.split('/')[1]} ({Path(run).name})": z[k] for k in z.files})
pairs = [(a, b) for a in mine for b in peers]
pairs += [(a, b) for a in mine for b in mine if a.startswith("ours-ease") and
          b.startswith("ours-ce")]
for a, b in pairs:
    ref, other = mine[a], mine.get(b, peers.get(b))
    assert other is not None and ref.shape == other.shape  # noqa: S101
    agree = float(np.mean((ref > 0) == (other > 0)))
    ci = paired_bootstrap(ref, other, resamples=10_000)
    print(f"| {a} | {b} | {ci.diff:+.4f} | [{ci.low:+.4f}, {ci.high:+.4f}] "
          f"| {'yes' if ci.significant else 'no'} | hit/miss agreement {agree:.3f} |")
