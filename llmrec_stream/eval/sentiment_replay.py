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
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.eval.stats import paired_bootstrap
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Comment, Item, Purchase, Source, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, Vector, contribution, decay, fuse
from llmrec_stream.ranking.aspects import rerank
from llmrec_stream.sentiment import Heads, TextSignals, load_heads
from llmrec_stream.sources.amazon import load_amazon2018

ARMS = ("unrated", "head", "ratings", "head+prior")


def _profile(events: list[tuple[UserEvent, Vector | None, Vector | None]], dim: int,
             weights: FusionWeights, arm: str, signals: TextSignals,
             shifted: TextSignals) -> Vector:
    """The fused query after these events (the Lua script's sums, in float64)."""
    text, beh = np.zeros(dim), np.zeros(dim)
    t_ref: int | None = None
    for event, tv, iv in events:
        if arm == "ratings":
            tc, bc = contribution(event, tv, iv, weights)
        else:
            hidden = replace(event, rating=None) if isinstance(event, Comment) else event
            scale = (signals.signed(hidden, tv) if arm == "head"
                     else shifted.signed(hidden, tv) if arm == "head+prior" else None)
            tc, bc = signals.contribution(hidden, tv, iv, weights, scale)
        if tc is None and bc is None:
            continue
        f = 1.0
        if t_ref is None:
            t_ref = event.ts
        elif event.ts > t_ref:
            d = decay(event.ts - t_ref, weights.half_life_s)
            text, beh, t_ref = text * d, beh * d, event.ts
        else:
            f = decay(t_ref - event.ts, weights.half_life_s)
        if tc is not None:
            text += f * tc
        if bc is not None:
            beh += f * bc
    return fuse(text.astype(np.float32), beh.astype(np.float32), weights.mix_text)


def _ranks(query: Vector, items: npt.NDArray[np.float32], target: int, seen: set[int]) -> int:
    scores = items @ query.astype(np.float32)
    scores[list(seen - {target})] = -np.inf
    return int((scores > scores[target]).sum())


@dataclass(frozen=True, slots=True)
class _Replay:
    """A replay folded into what the arms need: items, their vectors, each user's events."""

    item_ids: list[str]
    item_vecs: npt.NDArray[np.float32]
    per_user: dict[str, list[UserEvent]]
    text_vecs: dict[str, Vector]  # comment event id -> text vector
    heads: Heads


def _load(encoder_dir: Path, data: Path, purchases: bool) -> _Replay:
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    replay = load_amazon2018(data)
    limits = Limits(max_text_bytes=1 << 20, max_future_skew_s=10**9)
    catalog: list[Item] = []
    for o in replay.items:
        got = decode("llmrec.items", o.key.encode(), json.dumps(o.value).encode(),
                     Source("llmrec.items", 0, 0), limits)
        if isinstance(got, Rejected) or not isinstance(got.event, Item):
            raise ValueError(f"replay item {o.key} does not decode: {got}")
        catalog.append(got.event)
    item_ids = [it.item_id for it in catalog]
    item_texts = [it.text() for it in catalog]
    per_user: dict[str, list[UserEvent]] = defaultdict(list)
    for n, o in enumerate(replay.events):
        if not purchases and o.topic != "llmrec.comments":
            continue
        env = decode(o.topic, o.key.encode(), json.dumps(o.value).encode(),
                     Source(o.topic, 0, n), limits)
        if isinstance(env, Rejected) or not isinstance(env.event, Comment | Purchase):
            raise ValueError(f"replay event {n} does not decode: {env}")
        per_user[env.event.user_id].append(env.event)
    encoder = OnnxTextEncoder.load(encoder_dir)
    try:
        item_vecs = encoder.encode(item_texts)
        comments = [e for evs in per_user.values() for e in evs if isinstance(e, Comment)]
        unique = sorted({c.text for c in comments})  # 5-core files repeat many reviews
        by_text = dict(zip(unique, encoder.encode(unique), strict=True))
        text_vecs = {c.event_id: by_text[c.text] for c in comments}
    finally:
        encoder.close()
    heads = load_heads(encoder_dir, item_vecs.shape[1])
    if heads is None or heads.sentiment is None:
        raise ValueError(f"{encoder_dir} has no sentiment head: run train-sentiment first")
    return _Replay(item_ids, item_vecs, dict(per_user), text_vecs, heads)


def _cases(rp: _Replay) -> list[tuple[str, list[UserEvent], int, set[int]]]:
    """Per judged user: (user, history, target index, seen indexes). The target is the last
    review, judged where rated 4-5; the history has a comment."""
    index = {i: n for n, i in enumerate(rp.item_ids)}
    out = []
    for user, evs in rp.per_user.items():
        reviews = [e for e in evs if isinstance(e, Comment)]
        if len(reviews) < 2 or reviews[-1].rating is None or reviews[-1].rating < 4:
            continue
        last = reviews[-1]
        history = [e for e in evs if e.ts < last.ts]
        if not any(isinstance(e, Comment) for e in history):
            continue
        seen = {index[i] for e in history if (i := getattr(e, "item_id", None)) is not None}
        out.append((user, history, index[str(last.item_id)], seen))
    return out


def _triples(rp: _Replay, history: list[UserEvent]
             ) -> list[tuple[UserEvent, Vector | None, Vector | None]]:
    index = {i: n for n, i in enumerate(rp.item_ids)}
    return [(e, rp.text_vecs.get(e.event_id) if isinstance(e, Comment) else None,
             rp.item_vecs[index[i]] if (i := getattr(e, "item_id", None)) else None)
            for e in history]


def run(encoder_dir: Path, data: Path, *, purchases: bool = True, k: int = 10,
        seed: int = 0, resamples: int = 10_000, prior_shift: float = 0.0) -> dict[str, Any]:
    """Replay ``data`` (one 5-core file) in the three arms; returns the report."""
    rp = _load(encoder_dir, data, purchases)
    heads, item_vecs = rp.heads, rp.item_vecs
    signals = TextSignals(heads)
    head = heads.sentiment
    assert head is not None  # noqa: S101 - _load checked it
    shifted = TextSignals(replace(heads, sentiment=replace(head, bias=head.bias + prior_shift)))
    weights = FusionWeights()
    ranks: dict[str, list[int]] = {a: [] for a in ARMS}
    for _, history, target, seen in _cases(rp):
        triples = _triples(rp, history)
        for arm in ARMS:
            q = _profile(triples, item_vecs.shape[1], weights, arm, signals, shifted)
            ranks[arm].append(_ranks(q, item_vecs, target, seen))
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


# --- aspect preferences in the ranking ---------------------------------------------------

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
    rp = _load(encoder_dir, data, purchases)
    anchors = rp.heads.aspects
    if anchors is None:
        raise ValueError(f"{encoder_dir} has no aspect anchors: run train-sentiment first")
    signals = TextSignals(rp.heads)
    weights = FusionWeights()
    mentions = anchors.mentions_many(rp.item_vecs)
    cases = _cases(rp)
    if max_users is not None:
        cases = cases[:max_users]
    depth = k + pool
    split = np.array([_validation(u) for u, *_ in cases])
    ranks = np.zeros((len(grid), len(cases)), dtype=np.int64)
    with_aspects = np.zeros(len(cases), dtype=bool)
    for n, (_, history, target, seen) in enumerate(cases):
        triples = _triples(rp, history)
        q = _profile(triples, rp.item_vecs.shape[1], weights, arm if arm == "ratings" else "head",
                     signals, signals)
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
