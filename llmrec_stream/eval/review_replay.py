"""The review replay both replay studies share: the Amazon 2018 reviews (`sources.amazon`: a
comment per review, then a purchase of the item) encoded once, each user's history and target,
and profiles folded with the stream's own maths (`profiles.fusion`, `sentiment.TextSignals`).

`sentiment_replay` compares the sentiment head's arms on it; `aspect_replay` chooses the
aspect term's weight on it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Comment, Item, Purchase, Source, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, Vector, contribution, decay, fuse
from llmrec_stream.sentiment import Heads, TextSignals, load_heads
from llmrec_stream.sources.amazon import load_amazon2018

ARMS = ("unrated", "head", "ratings", "head+prior")


def fold_profile(events: list[tuple[UserEvent, Vector | None, Vector | None]], dim: int,
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


def target_rank(query: Vector, items: npt.NDArray[np.float32], target: int, seen: set[int]) -> int:
    scores = items @ query.astype(np.float32)
    scores[list(seen - {target})] = -np.inf
    return int((scores > scores[target]).sum())


@dataclass(frozen=True, slots=True)
class Replay:
    """A replay folded into what the arms need: items, their vectors, each user's events."""

    item_ids: list[str]
    item_vecs: npt.NDArray[np.float32]
    per_user: dict[str, list[UserEvent]]
    text_vecs: dict[str, Vector]  # comment event id -> text vector
    heads: Heads


def load_replay(encoder_dir: Path, data: Path, purchases: bool) -> Replay:
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
    return Replay(item_ids, item_vecs, dict(per_user), text_vecs, heads)


def replay_cases(rp: Replay) -> list[tuple[str, list[UserEvent], int, set[int]]]:
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


def event_triples(rp: Replay, history: list[UserEvent]
             ) -> list[tuple[UserEvent, Vector | None, Vector | None]]:
    index = {i: n for n, i in enumerate(rp.item_ids)}
    return [(e, rp.text_vecs.get(e.event_id) if isinstance(e, Comment) else None,
             rp.item_vecs[index[i]] if (i := getattr(e, "item_id", None)) else None)
            for e in history]
