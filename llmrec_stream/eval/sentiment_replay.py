"""Recommendation quality with and without the sentiment head, on a replay with ratings hidden.

``python -m llmrec_stream.eval.sentiment_replay --encoder-dir DIR --data FILE``. The Amazon 2018
replay (`llmrec_stream.sources.amazon`: a comment per review, then a purchase of the item) is
folded into profiles with the stream's own maths (`profiles.fusion`: the same contributions,
decay and fusion the Lua script applies; `sentiment.TextSignals` for the head), and ranked as
the fused ranker does: cosine of the fused query to every item vector. Each user's last review
is the target, judged only where it was rated 4-5 (an item the user liked); every earlier
event is the history, every comment's rating removed. Three arms on the same users:

- ``unrated``: what the stream did before the head, +0.5 for every comment on an item;
- ``head``: the sentiment head signs and scales each comment (2p - 1);
- ``ratings``: the hidden ratings shown again (the reference the head tries to approach);
- ``head+prior``: the head with ``--prior-shift`` added to its logit (log(positives/negatives)
  of its training reviews undoes the balanced class weights: odds as the data has them).

``--no-purchases`` drops the purchases, so a comment is all the stream knows of an item. The
difference head - unrated in NDCG@10 gets a paired bootstrap interval over users
(`eval.stats.paired_bootstrap`). History items are excluded from each list, as in the harness.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_stream.eval.aspect_replay import run_aspects
from llmrec_stream.eval.review_replay import (
    ARMS,
    event_triples,
    fold_profile,
    load_replay,
    replay_cases,
    target_rank,
)
from llmrec_stream.eval.stats import paired_bootstrap
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.sentiment import TextSignals


def run(encoder_dir: Path, data: Path, *, purchases: bool = True, k: int = 10,
        seed: int = 0, resamples: int = 10_000, prior_shift: float = 0.0) -> dict[str, Any]:
    """Replay ``data`` (one 5-core file) in the three arms; returns the report."""
    rp = load_replay(encoder_dir, data, purchases)
    heads, item_vecs = rp.heads, rp.item_vecs
    signals = TextSignals(heads)
    head = heads.sentiment
    assert head is not None  # noqa: S101 - load checked it
    shifted = TextSignals(replace(heads, sentiment=replace(head, bias=head.bias + prior_shift)))
    weights = FusionWeights()
    ranks: dict[str, list[int]] = {a: [] for a in ARMS}
    for _, history, target, seen in replay_cases(rp):
        triples = event_triples(rp, history)
        for arm in ARMS:
            q = fold_profile(triples, item_vecs.shape[1], weights, arm, signals, shifted)
            ranks[arm].append(target_rank(q, item_vecs, target, seen))
    out: dict[str, Any] = {"data": data.name, "purchases": purchases, "users": len(ranks["head"]),
                           "items": len(rp.item_ids), "k": k, "seed": seed,
                           "prior_shift": prior_shift}
    ndcg = {}
    for arm in ARMS:
        r = np.asarray(ranks[arm])
        ndcg[arm] = np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0)
        out[arm] = {f"hr@{k}": float(np.mean(r < k)), f"ndcg@{k}": float(ndcg[arm].mean())}
    for arm in ("head", "ratings", "head+prior"):
        iv = paired_bootstrap(ndcg[arm], ndcg["unrated"], resamples=resamples, seed=seed)
        out[f"{arm}-unrated ndcg@{k}"] = {"diff": iv.diff, "ci95": [iv.low, iv.high],
                                          "significant": iv.significant}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m llmrec_stream.eval.sentiment_replay")
    parser.add_argument("--encoder-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="one *_5.json.gz file")
    parser.add_argument("--no-purchases", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--prior-shift", type=float, default=0.0,
                        help="added to the head's logit in the head+prior arm")
    parser.add_argument("--aspects", choices=("ratings", "head"), default=None,
                        help="instead: choose the aspect term's weight on validation users "
                        "and measure it on test users, comments signed by their ratings or "
                        "(ratings hidden) by the head")
    parser.add_argument("--pool", type=int, default=30, help="aspect re-ranking pool past k")
    parser.add_argument("--max-users", type=int, default=None)
    args = parser.parse_args()
    if args.aspects is not None:
        report = run_aspects(args.encoder_dir, args.data, arm=args.aspects, pool=args.pool,
                             seed=args.seed, purchases=not args.no_purchases,
                             max_users=args.max_users)
    else:
        report = run(args.encoder_dir, args.data, purchases=not args.no_purchases,
                     seed=args.seed, prior_shift=args.prior_shift)
    print(json.dumps(report, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
