"""Sentiment and aspects from text (issue 14, item 5) through the real broker, a live worker and
the real Redis.

The worker runs with ``LLMREC_TEXT_SIGNALS=1`` on the session's MiniLM artifact with the heads
of ``tests/heads`` attached (``encoder_dir_with_heads``: what `llmrec-stream train-sentiment`
learned on that encoder). An unrated, clearly negative comment on an item must push the user's
profile away from the item (before the head it counted +0.5, toward it); the record carries the
user's aspect scores; no text reaches Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import fastjsonschema
import numpy as np
import redis.asyncio as aioredis

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.codec import SCHEMAS_DIR
from llmrec_stream.events.models import Comment, Source
from llmrec_stream.profiles.fusion import FusionWeights, fuse
from llmrec_stream.profiles.store import (
    Contribution,
    ProfileStore,
    decode_aspects,
    decode_vector_state,
    vectors_key,
)
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sentiment import ASPECTS
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import catalog_worker, own_stack, replay_world

validate_rec = fastjsonschema.compile(json.loads((SCHEMAS_DIR / "recommendation.json").read_text()))
DIM = 384
CANARY = "zqxsenti4417"


stack = own_stack()
world = replay_world(n_items=40, n_users=2, n_events=0, seed=51)
worker = catalog_worker("senti", encoder="encoder_dir_with_heads",
                        env={"LLMREC_TEXT_SIGNALS": "1"})


def _comment(user: str, item_id: str, text: str) -> OutboundEvent:
    value = {**envelope(f"{user}-c", 0), "user_id": user, "text": text, "item_id": item_id}
    return OutboundEvent(topics.COMMENTS, user, value)


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _cos_to_item(worker: LiveWorker, user: str, item_id: str) -> tuple[float, float]:
    """(behaviour, fused) cosine of the user's stored profile to the item's vector."""
    state = decode_vector_state(worker.redis.get(vectors_key(user)), DIM)
    item = np.frombuffer(worker.redis.hget(VECTORS, item_id), dtype="<f4")
    beh = state.behaviour / np.linalg.norm(state.behaviour)
    return float(beh @ item), float(fuse(state.text, state.behaviour, 0.5) @ item)


def test_an_unrated_negative_comment_pushes_the_profile_away_from_its_item(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay
) -> None:
    item = world.items[3].value
    noun = item["title"].split()[-2].lower()
    sour, fond = "senti-sour", "senti-fond"
    worker.publish([
        _comment(sour, item["item_id"], f"This {noun} broke after two days. Terrible quality, "
                 f"way too expensive, a complete waste of money. {CANARY}"),
        _comment(fond, item["item_id"], "Great value for the money, worth every cent. "
                 f"I love this {noun}."),
    ])
    _wait(lambda: {sour, fond} <= set(watcher.snapshot().latest), 30, "both records")
    beh_sour, fused_sour = _cos_to_item(worker, sour, item["item_id"])
    beh_fond, fused_fond = _cos_to_item(worker, fond, item["item_id"])
    # before the head both comments counted +0.5 of the item: cosine +1 for both
    assert beh_sour < -0.99 and fused_sour < 0, (beh_sour, fused_sour)
    assert beh_fond > 0.99 and fused_fond > 0.5, (beh_fond, fused_fond)
    rec_sour, rec_fond = (watcher.snapshot().latest[u] for u in (sour, fond))
    assert item["item_id"] not in rec_sour["items"]
    assert rec_fond["items"][0] == item["item_id"]
    for rec in (rec_sour, rec_fond):
        validate_rec(rec)
    # aspects in the record: the sour comment speaks badly of quality or price, the fond one
    # well of the price
    assert rec_sour["aspects"] and min(rec_sour["aspects"].values()) < 0, rec_sour["aspects"]
    assert rec_fond["aspects"].get("price", 0) > 0, rec_fond["aspects"]
    print("aspects:", rec_sour["aspects"], rec_fond["aspects"], "cosines:", beh_sour, fused_sour,
          beh_fond, fused_fond)
    stored = decode_aspects(worker.redis.get(vectors_key(sour)), DIM)
    assert {n: s for n, s in zip(ASPECTS, stored, strict=True) if s} == rec_sour["aspects"]
    metrics = worker.metrics()
    assert metrics['llmrec_sentiment_signed_comments_total{sign="negative"}'] >= 1
    assert metrics['llmrec_sentiment_signed_comments_total{sign="positive"}'] >= 1
    # privacy: the comment's words are nowhere in Redis
    r = worker.redis
    for key in r.scan_iter():
        kind = r.type(key)
        values = ([r.get(key)] if kind == b"string" else list(r.hgetall(key).values())
                  if kind == b"hash" else r.zrange(key, 0, -1) if kind == b"zset" else [])
        assert not any(CANARY.encode() in v for v in values if v), key


def test_aspect_scores_apply_once_fade_and_are_erased(stack: DevStack) -> None:
    """Through the real Redis script: score = previous × 0.9 + delta, a replayed comment
    changes nothing (the offset watermark), erasure removes the scores with the profile."""
    user = "senti-store"
    weights = FusionWeights()
    text = np.zeros(DIM, dtype=np.float32)
    text[0] = 1.0

    def comment(offset: int, deltas: tuple[float, ...]) -> Contribution:
        event = Comment(f"c{offset}", 1_000 + offset, user, "t", None, None)
        return Contribution(event, Source(topics.COMMENTS, 0, offset), text, None, b"", deltas)

    async def run() -> tuple[tuple[float, ...], ...]:
        client = aioredis.Redis.from_url(stack.redis_url)
        try:
            store = ProfileStore(client, DIM, weights)
            [a] = await store.apply({user: [comment(1, (-0.5, 0.0, 0.25, 0.0))]})
            [b] = await store.apply({user: [comment(2, (0.0, 0.75, 0.0, 0.0))]})
            [c] = await store.apply({user: [comment(2, (0.0, 0.75, 0.0, 0.0))]})  # a replay
            await store.erase(user, 5_000, Source(topics.ERASE, 0, 1))
            raw = await client.get(vectors_key(user))
            return a.aspects, b.aspects, c.aspects, () if raw is None else decode_aspects(raw, DIM)
        finally:
            await client.aclose()

    first, second, replayed, erased = asyncio.run(run())
    assert first == (-0.5, 0.0, 0.25, 0.0)
    assert second == (-0.45, 0.75, 0.225, 0.0)
    assert replayed == second
    assert erased == ()
