"""A backfill: the catalog and the events are all in Kafka before the first worker starts.

A new deployment, or a replay from offset 0. Every item is earlier in the log than the events
that name it, so none of those events may become an ``unknown_item`` dead letter (the catalog
is read to its end before the user-events agent takes a record: DESIGN.md "Catalog first"),
and Redis must hold exactly what the verifier derives from the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.replay import producer, publish
from llmrec_stream.sources.synthetic import synthetic_replay
from llmrec_stream.verify import compare, expected_profiles, read_log
from tests.integration.live import EVENT_TOPICS, LiveWorker

N_ITEMS = 300
N_EVENTS = 5_000  # 22 % of these were unknown_item dead letters before the catalog bootstrap


@pytest.fixture(scope="module")
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
        unknown = samples.get('llmrec_dlq_total{reason="unknown_item"}', 0.0)
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


pytestmark = pytest.mark.timeout(600)
