"""Paired bootstrap CIs of ours-ease against the 2026-12-06 runs on Scientific.

Usage: python docs/eval-runs/2026-12-06b/ci.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is an ``llmrec-stream eval`` results folder with ``user_ndcg.npz``; the
reference arrays of the 2026-12-06 runs (EASE, ALS, item-KNN, BPR, popularity from
``sci-fast``; ours-ce from ``sci-ours``) are copied under ``inputs/`` because those runs kept
their ``user_ndcg.npz`` outside the repository. The users are the same rows in the same order
(one loader, one file). ``eval.stats.paired_bootstrap``: 10,000 resamples, seed 0.
"""

import sys
from pathlib import Path

import numpy as np

from llmrec_stream.eval.stats import paired_bootstrap

here = Path(__file__).parent
peers: dict[str, np.ndarray] = {}
for name in ("sci-fast", "sci-ours"):
    with np.load(here / "inputs" / f"{name}.user_ndcg.npz") as z:
        peers.update({k.split("/")[1]: z[k] for k in z.files})
for run in sys.argv[1:]:
    with np.load(Path(run) / "user_ndcg.npz") as z:
        ours = z["Scientific/ours-ease"]
    for other in ("ease", "ours-ce", "als", "item-knn"):
        ci = paired_bootstrap(ours, peers[other], resamples=10_000)
        print(f"| {run} | ours-ease | {other} | {ci.diff:+.4f} | [{ci.low:+.4f}, {ci.high:+.4f}] "
              f"| {'yes' if ci.significant else 'no'} |")
