"""The aspect term's weight (`ranking.aspects`), chosen on validation users of the review
replay (`review_replay`) and measured on the others: ``python -m
llmrec_stream.eval.sentiment_replay --aspects ratings|head`` (docs/features.md)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.eval.review_replay import event_triples, fold_profile, load_replay, replay_cases
from llmrec_stream.eval.stats import paired_bootstrap
from llmrec_stream.events.models import Comment, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, Vector
from llmrec_stream.ranking.aspects import rerank
from llmrec_stream.sentiment import TextSignals

#: Aspect weights tried on the validation users (both signs: see `ranking.aspects`).
ASPECT_GRID = (-4.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
ASPECT_KEEP = 0.9  # profile.lua: an older comment's aspect additions fade by this per comment
ASPECT_MAX = 32.767  # profile.lua: int16 thousandths


def _user_aspects(triples: list[tuple[UserEvent, Vector | None, Vector | None]],
                  signals: TextSignals, arm: str) -> npt.NDArray[np.float64]:
    """The aspect scores ``profile.lua`` keeps after these events (same order, same fading,
    thousandths). ``ratings``: a comment keeps its rating; ``head``: ratings hidden, the
    sentiment head signs the comment (what the stream does with an unrated one)."""
    anchors = signals.heads.aspects
    assert anchors is not None  # noqa: S101 - the caller checked it
    scores = np.zeros(len(anchors.names))
    for event, tv, _ in triples:
        if not isinstance(event, Comment):
            continue
        ev = event if arm == "ratings" else replace(event, rating=None)
        deltas = signals.aspects(ev, tv, signals.signed(ev, tv))
        if deltas:
            scores = np.clip(scores * ASPECT_KEEP + np.asarray(deltas), -ASPECT_MAX, ASPECT_MAX)
            scores = np.round(scores, 3)
    return scores


def _rank_in_pool(base: npt.NDArray[np.float32], seen: set[int], target: int,
                  user: npt.NDArray[np.float64], mentions: npt.NDArray[np.float64],
                  weight: float, depth: int, names: tuple[str, ...]) -> int:
    """The target's rank after the aspect term re-ranked the ranker's best ``depth`` items
    (`ranking.aspects.rerank`, as the worker does it); ``depth`` when it is not among them."""
    scores = base.astype(np.float64)
    scores[list(seen - {target})] = -np.inf
    pool = sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:depth]
    top = [(str(j), float(scores[j])) for j in pool]
    if weight == 0 or not np.any(user):
        order = [int(i) for i, _ in top]
    else:
        new, _ = rerank(top, user, mentions[pool], weight, depth, names)
        order = [int(i) for i, _ in new]
    return order.index(target) if target in order else depth


def _validation(user: str) -> bool:
    """A stable half of the users (by a hash of the id) is the validation set."""
    return hashlib.sha256(user.encode("utf-8")).digest()[0] % 2 == 0


def run_aspects(encoder_dir: Path, data: Path, *, arm: str = "ratings", k: int = 10,
                pool: int = 30, seed: int = 0, resamples: int = 10_000,
                grid: tuple[float, ...] = ASPECT_GRID, purchases: bool = True,
                max_users: int | None = None) -> dict[str, Any]:
    """The aspect term's weight chosen on validation users, measured on the others.

    Users are split in two by a hash of their id. Each weight of ``grid`` ranks every user
    (the fused profile ranker's candidates, ``k + pool`` of them, re-ranked by the term as the
    worker does); the weight with the best NDCG@k on the validation half (ties: the smaller
    absolute weight, 0 first) is then compared with weight 0 on the test half, paired bootstrap
    over those users. ``arm``: ``ratings`` (comments keep their stars: what the stream does
    with this data) or ``head`` (ratings hidden: the sentiment head signs comments and
    aspects).
    """
    rp = load_replay(encoder_dir, data, purchases)
    anchors = rp.heads.aspects
    if anchors is None:
        raise ValueError(f"{encoder_dir} has no aspect anchors: run train-sentiment first")
    signals = TextSignals(rp.heads)
    weights = FusionWeights()
    mentions = anchors.mentions_many(rp.item_vecs)
    cases = replay_cases(rp)
    if max_users is not None:
        cases = cases[:max_users]
    depth = k + pool
    split = np.array([_validation(u) for u, *_ in cases])
    ranks = np.zeros((len(grid), len(cases)), dtype=np.int64)
    with_aspects = np.zeros(len(cases), dtype=bool)
    for n, (_, history, target, seen) in enumerate(cases):
        triples = event_triples(rp, history)
        q = fold_profile(triples, rp.item_vecs.shape[1], weights,
                         arm if arm == "ratings" else "head", signals, signals)
        user = _user_aspects(triples, signals, arm)
        with_aspects[n] = bool(np.any(user))
        base = rp.item_vecs @ q.astype(np.float32)
        for g, w in enumerate(grid):
            ranks[g, n] = _rank_in_pool(base, seen, target, user, mentions, w, depth,
                                        anchors.names)
    ndcg = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    val = {f"{w:g}": float(ndcg[g, split].mean()) for g, w in enumerate(grid)}
    zero = grid.index(0.0)
    best = max(range(len(grid)), key=lambda g: (round(ndcg[g, split].mean(), 12),
                                                -abs(grid[g])))
    test = ~split
    iv = paired_bootstrap(ndcg[best, test], ndcg[zero, test], resamples=resamples, seed=seed)
    moved = float(np.mean(ranks[best, test] != ranks[zero, test]))
    # said beside it, not chosen: the best weight other than 0 on validation, on test
    alt = max((g for g in range(len(grid)) if g != zero),
              key=lambda g: (round(ndcg[g, split].mean(), 12), -abs(grid[g])))
    alt_iv = paired_bootstrap(ndcg[alt, test], ndcg[zero, test], resamples=resamples, seed=seed)
    return {
        "data": data.name, "arm": arm, "purchases": purchases, "items": len(rp.item_ids),
        "users": len(cases), "validation_users": int(split.sum()),
        "test_users": int(test.sum()), "users_with_aspect_scores": int(with_aspects.sum()),
        "k": k, "pool": pool, "seed": seed,
        f"validation ndcg@{k} by weight": val,
        "chosen_weight": grid[best],
        f"test ndcg@{k}": {"weight 0": float(ndcg[zero, test].mean()),
                           "chosen": float(ndcg[best, test].mean())},
        f"test hr@{k}": {"weight 0": float(np.mean(ranks[zero, test] < k)),
                         "chosen": float(np.mean(ranks[best, test] < k))},
        f"test chosen-0 ndcg@{k}": {"diff": iv.diff, "ci95": [iv.low, iv.high],
                                    "significant": iv.significant},
        "test users whose target moved": moved,
        "best nonzero weight on validation (not chosen unless it is the chosen one)": {
            "weight": grid[alt], f"test ndcg@{k}": float(ndcg[alt, test].mean()),
            "diff vs 0": alt_iv.diff, "ci95": [alt_iv.low, alt_iv.high],
            "significant": alt_iv.significant},
    }
