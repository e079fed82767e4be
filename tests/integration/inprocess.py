"""Pipelines driven in process against the session's real broker and Redis.

Records are produced to the real topics, read back from the log and handed to a `Pipeline` as
the worker's agents hand them; its outputs go to the real topics through `ProducerSink`. The
erasure, social and shadow tests build on `InProcess`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Producer

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.events.records import RawRecord
from llmrec_stream.kafka_log import read_records
from llmrec_stream.pipeline import Pipeline
from llmrec_stream.replay import producer, publish
from llmrec_stream.sources.base import OutboundEvent
from llmrec_stream.worker import build_pipeline


class ProducerSink:
    """The pipeline's output on the real topics (a confluent producer, as outside Faust)."""

    def __init__(self, bootstrap: str) -> None:
        self.prod: Producer = producer(bootstrap)

    async def recommendation(self, user_id: str, payload: bytes) -> None:
        self.prod.produce(topics.RECOMMENDATIONS, payload, user_id.encode())

    async def tombstone(self, user_id: str) -> None:
        self.prod.produce(topics.RECOMMENDATIONS, None, user_id.encode())

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.prod.produce(topics.DLQ, payload, key, headers=headers)


class RefusingSink:
    """A sink for pipelines that must publish nothing, or only the kinds a subclass keeps: any
    other record fails the test, naming ``what`` publishes it."""

    what = "this pipeline"

    async def recommendation(self, user_id: str, payload: bytes) -> object:
        raise AssertionError(f"{self.what} publishes no recommendation")

    async def tombstone(self, user_id: str) -> object:
        raise AssertionError(f"{self.what} publishes no tombstone")

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> object:
        raise AssertionError(f"{self.what} publishes no dead letter")


class InProcess:
    """One event loop, a producer and a sink on ``stack``; pipelines on ``encoder`` named
    ``identity`` (no artifact behind it, so the catalog records this name)."""

    def __init__(self, stack: DevStack, encoder: TextEncoder, identity: str) -> None:
        self.stack, self.encoder, self.identity = stack, encoder, identity
        self.loop = asyncio.new_event_loop()
        self.prod = producer(stack.kafka_bootstrap)
        self.sink = ProducerSink(stack.kafka_bootstrap)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def build(self, **settings: Any) -> Pipeline:
        """A pipeline as the worker builds it, with these settings over the stack's."""
        full = Settings(redis_url=self.stack.redis_url,
                        kafka_bootstrap=self.stack.kafka_bootstrap, **settings)
        p: Pipeline = self.run(build_pipeline(full, self.sink,  # type: ignore[arg-type]
                                              encoder=self.encoder, identity=self.identity))
        return p

    @contextlib.contextmanager
    def open_pipeline(self, **settings: Any) -> Iterator[Pipeline]:
        """`build`'s pipeline for the block, closed after it (the test's checks included)."""
        p = self.build(**settings)
        try:
            yield p
        finally:
            p.close()

    def produce(self, events: list[OutboundEvent]) -> None:
        publish(self.prod, events, live=False)

    def records(self, topic_names: list[str], key: str) -> list[RawRecord]:
        """The key's records as the log holds them, from offset 0."""
        return [r for r in read_records(self.stack.kafka_bootstrap, topic_names,
                                        partitions=self.stack.partitions)
                if r.key == key.encode()]

    def ingest_items(self, items: Iterable[OutboundEvent]) -> None:
        """Produce catalog items and have a pipeline apply every record of their keys."""
        items = list(items)
        keys = {e.key.encode() for e in items}
        self.produce(items)
        with self.open_pipeline() as p:
            self.run(p.process_items([r for r in read_records(
                self.stack.kafka_bootstrap, [topics.ITEMS], partitions=self.stack.partitions)
                if r.key in keys]))

    def close(self) -> None:
        self.sink.prod.flush(10)
        self.loop.close()
