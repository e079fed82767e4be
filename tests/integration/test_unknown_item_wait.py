"""During live traffic an event may overtake its item: the batch waits for it, bounded.

Against the real Redis: another worker publishes the item (its partition of ``llmrec.items``)
while this worker's batch waits; an item nobody publishes is a dead letter after the wait.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.events.models import Item
from llmrec_stream.events.records import RawRecord
from llmrec_stream.pipeline import PreparedEvents
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.worker import build_pipeline
from tests.integration.inprocess import RefusingSink

WAIT_S = 2.0
PUBLISHED_AFTER_S = 0.5


class DeadLetters(RefusingSink):
    """A sink that keeps the dead letters; nothing else is published by `prepare_events`."""

    what = "prepare_events"

    def __init__(self) -> None:
        self.keys: list[bytes | None] = []

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.keys.append(key)


def _click(offset: int, user: str, item: str) -> RawRecord:
    value = {**envelope(f"wait-{offset}", int(time.time() * 1000)), "user_id": user,
             "item_id": item}
    key, raw = OutboundEvent(topics.CLICKS, user, value).encode()
    return RawRecord(topics.CLICKS, 0, offset, key, raw)


async def _batch_meets_a_late_item(
    settings: Settings, encoder: TextEncoder
) -> tuple[PreparedEvents, float, DeadLetters, dict[str, float]]:
    sink = DeadLetters()
    pipeline = await build_pipeline(settings, sink, encoder=encoder)
    other_client = aioredis.Redis.from_url(settings.redis.url)
    other = Catalog(other_client, ExactIndex(encoder.dim))
    late = Item("wait-item", int(time.time() * 1000), "late-item", "A late item")

    async def other_worker_publishes() -> None:
        await asyncio.sleep(PUBLISHED_AFTER_S)
        await other.publish([late], encoder.encode([late.text()]))

    try:
        publishing = asyncio.ensure_future(other_worker_publishes())
        started = time.monotonic()
        prepared = await pipeline.prepare_events(
            [_click(1, "wait-user-1", "late-item"), _click(2, "wait-user-2", "no-such-item")]
        )
        took = time.monotonic() - started
        await publishing
        waits = {
            outcome: pipeline.metrics.unknown_item_waits.labels(outcome)._value.get()
            for outcome in ("found", "dead_letter")
        }
        return prepared, took, sink, waits
    finally:
        pipeline.close()
        await pipeline.store.client.aclose()
        await other_client.aclose()


def test_an_event_waits_for_its_item_and_an_unknown_one_is_dead_lettered_after_the_wait(
    stack: DevStack, redis_client: redis.Redis, encoder_dir: Path, text_encoder: TextEncoder
) -> None:
    settings = Settings(redis_url=stack.redis_url, kafka_bootstrap=stack.kafka_bootstrap,
                        encoder_dir=str(encoder_dir), catalog_bootstrap=False,
                        unknown_item_wait_s=WAIT_S)
    prepared, took, sink, waits = asyncio.run(_batch_meets_a_late_item(settings, text_encoder))
    print(f"\nbatch prepared in {took:.2f}s: kept "
          f"{[e.source.offset for e in prepared.envelopes]}, dead letters "
          f"{prepared.outcome.dead_letters}, waits {waits}")
    assert [e.source.offset for e in prepared.envelopes] == [1]  # the late item's click
    assert prepared.outcome.dead_letters == {"unknown_item": 1}
    assert len(sink.keys) == 1  # written to the dead-letter topic
    assert WAIT_S <= took < WAIT_S + 2.0  # bounded by the setting
    assert waits == {"found": 1, "dead_letter": 1}
