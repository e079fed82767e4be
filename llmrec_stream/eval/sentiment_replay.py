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
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.eval.stats import paired_bootstrap
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Comment, Item, Purchase, Source, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, Vector, contribution, decay, fuse
from llmrec_stream.sentiment import TextSignals, load_heads
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


def run(encoder_dir: Path, data: Path, *, purchases: bool = True, k: int = 10,
        seed: int = 0, resamples: int = 10_000, prior_shift: float = 0.0) -> dict[str, Any]:
    """Replay ``data`` (one 5-core file) in the three arms; returns the report."""
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
    signals = TextSignals(heads)
    head = heads.sentiment
    shifted = TextSignals(replace(heads, sentiment=replace(head, bias=head.bias + prior_shift)))
    index = {i: n for n, i in enumerate(item_ids)}
    weights = FusionWeights()
    ranks: dict[str, list[int]] = {a: [] for a in ARMS}
    for evs in per_user.values():
        reviews = [e for e in evs if isinstance(e, Comment)]
        if len(reviews) < 2 or reviews[-1].rating is None or reviews[-1].rating < 4:
            continue
        last = reviews[-1]
        history = [e for e in evs if e.ts < last.ts]
        if not any(isinstance(e, Comment) for e in history):
            continue
        target = index[str(last.item_id)]
        seen = {index[i] for e in history if (i := getattr(e, "item_id", None)) is not None}
        triples = [(e, text_vecs.get(e.event_id) if isinstance(e, Comment) else None,
                    item_vecs[index[i]] if (i := getattr(e, "item_id", None)) else None)
                   for e in history]
        for arm in ARMS:
            q = _profile(triples, item_vecs.shape[1], weights, arm, signals, shifted)
            ranks[arm].append(_ranks(q, item_vecs, target, seen))
    out: dict[str, Any] = {"data": data.name, "purchases": purchases, "users": len(ranks["head"]),
                           "items": len(item_ids), "k": k, "seed": seed,
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
    args = parser.parse_args()
    print(json.dumps(run(args.encoder_dir, args.data, purchases=not args.no_purchases,  # noqa: T201
                         seed=args.seed, prior_shift=args.prior_shift), indent=2))


if __name__ == "__main__":
    main()
