"""A backfill: the catalog and the events are all in Kafka before the first worker starts.

A new deployment, or a replay from offset 0. Every item is earlier in the log than the events
that name it, so none of those events may become an ``unknown_item`` dead letter (the catalog
is read to its end before the user-events agent takes a record: DESIGN.md "Catalog first"),
and Redis must hold exactly what the verifier derives from the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.sources.base import OutboundEvent
from llmrec_stream.sources.synthetic import synthetic_replay
from llmrec_stream.verify import compare, expected_profiles, read_log
from llmrec_stream.worker import CatalogBootstrap, bootstrap_catalog
from tests.integration.live import EVENT_TOPICS, LiveWorker

N_ITEMS = 300
N_EVENTS = 5_000  # 22 % of these were unknown_item dead letters before the catalog bootstrap


@pytest.fixture
def empty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A stack of its own: the topics hold only this test's records, from offset 0."""
    with DevStack(workdir=tmp_path_factory.mktemp("backfill-stack")) as dev_stack:
        yield dev_stack


def test_a_backfill_dead_letters_no_event_as_unknown_item(
    empty_stack: DevStack, encoder_dir: Path, text_encoder: TextEncoder, tmp_path: Path
) -> None:
    world = synthetic_replay(
        n_items=N_ITEMS, n_users=400, n_events=N_EVENTS, seed=12, mix=(0.05, 0.65, 0.3)
    )
    prod = producer(empty_stack.kafka_bootstrap)
    publish(prod, world.items)
    publish(prod, world.users + world.events)
    assert prod.flush(30) == 0
    started = time.monotonic()
    worker = LiveWorker(empty_stack, encoder_dir, tmp_path).start()
    try:
        worker.wait_caught_up(timeout=240)
        took = time.monotonic() - started
        samples = worker.metrics()
        unknown = samples.get('llmrec_dead_letters_total{reason="unknown_item"}', 0.0)
        log = read_log(empty_stack.kafka_bootstrap, EVENT_TOPICS, empty_stack.partitions)
        expected, rejected = expected_profiles(log, {e.key for e in world.items})
        report = compare(worker.redis, expected, FusionWeights(), encoder=text_encoder,
                         vector_users=300)
        bootstrap = {k: v for k, v in samples.items() if k.startswith("llmrec_catalog_bootstrap")}
        print(f"\nbackfill of {N_ITEMS} items + {len(log)} events: caught up in {took:.1f}s, "
              f"unknown_item dead letters {unknown:.0f}, users {report.users}, "
              f"mismatches {len(report.mismatches)}; bootstrap {bootstrap}")
        assert rejected == {}  # every event is good: the verifier expects no dead letter
        assert unknown == 0
        assert report.ok, report.mismatches[:5]
        assert worker.stop() == 0, worker.proc.log_tail()
    finally:
        worker.stop()


async def _start_up(settings: Settings, encoder: TextEncoder) -> tuple[CatalogBootstrap, Catalog]:
    """What a starting worker's `bootstrap_catalog` does, on a catalog of its own."""
    client = aioredis.Redis.from_url(settings.redis.url)
    catalog = Catalog(client, ExactIndex(encoder.dim))
    try:
        await catalog.bootstrap()
        return await bootstrap_catalog(settings, catalog, encoder, Metrics()), catalog
    finally:
        await client.aclose()


def test_a_starting_worker_encodes_only_the_items_the_catalog_lacks_or_that_changed(
    empty_stack: DevStack, text_encoder: TextEncoder
) -> None:
    world = synthetic_replay(n_items=40, n_users=1, n_events=0, seed=13)
    prod = producer(empty_stack.kafka_bootstrap)
    publish(prod, world.items)
    prod.produce(topics.ITEMS, b"{not json", b"bad-item")  # the items agent's dead letter
    assert prod.flush(30) == 0
    settings = Settings(redis_url=empty_stack.redis_url,
                        kafka_bootstrap=empty_stack.kafka_bootstrap)
    first, catalog = asyncio.run(_start_up(settings, text_encoder))
    assert (first.records, first.items, first.encoded) == (41, 40, 40)
    assert len(catalog.index) == 40
    again, catalog = asyncio.run(_start_up(settings, text_encoder))  # a second worker
    assert (again.records, again.items, again.encoded) == (41, 40, 0)
    assert len(catalog.index) == 40  # loaded from Redis, nothing encoded
    changed = world.items[3]
    renamed = OutboundEvent(changed.topic, changed.key, {**changed.value, "title": "Renamed"})
    publish(prod, [renamed])
    assert prod.flush(30) == 0
    after, catalog = asyncio.run(_start_up(settings, text_encoder))
    assert (after.records, after.items, after.encoded) == (42, 40, 1)
    text = ". ".join([
        "Renamed", str(changed.value["description"]), ", ".join(changed.value["tags"]),
    ])
    held = catalog.index.vector(changed.key)
    assert held is not None
    np.testing.assert_allclose(held, text_encoder.encode([text])[0], atol=1e-6)


pytestmark = pytest.mark.timeout(600)
