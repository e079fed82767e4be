"""What the workers published, read without a live consumer while they are measured.

A consumer that follows ``llmrec.recommendations`` live costs the machine almost a core
against the embedded broker (it answers empty fetches at once, so librdkafka and the broker
fetch in a tight loop: measured 40 % + 57 % of a core while idle) and adds ~100 ms of its own
to what it sees. A benchmark on two cores cannot afford either, so it watches the topic's end
offsets (metadata requests, no fetches) and reads the records after the fact; freshness then
comes from the timestamps inside each record: ``published_ts`` (the worker, when it hands the
record to its producer) minus ``trigger_ts`` (the newest triggering event's time, stamped by
the load generator when it sent the event).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from llmrec_stream.events import topics


class Outputs:
    """End offsets and after-the-fact reads of ``llmrec.recommendations``."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-outputs-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        self._partitions = range(partitions)

    def ends(self) -> list[int]:
        """The next offset of every partition."""
        return [
            self._consumer.get_watermark_offsets(
                TopicPartition(topics.RECOMMENDATIONS, p), timeout=10, cached=False
            )[1]
            for p in self._partitions
        ]

    def count_since(self, start: list[int]) -> int:
        return sum(e - s for e, s in zip(self.ends(), start, strict=True))

    def read(
        self, start: list[int], end: list[int], timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        """Every record between two `ends` snapshots (tombstones left out)."""
        todo = {p: (s, e) for p, (s, e) in enumerate(zip(start, end, strict=True)) if e > s}
        self._consumer.assign(
            [TopicPartition(topics.RECOMMENDATIONS, p, s) for p, (s, _e) in todo.items()]
        )
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while todo and time.monotonic() < deadline:
                for msg in self._consumer.consume(1000, timeout=0.5):
                    p, offset = msg.partition(), msg.offset()
                    if msg.error() or p not in todo or offset is None:
                        continue
                    if offset < todo[p][1] and msg.value() is not None:
                        out.append(json.loads(msg.value() or b"{}"))
                    if offset + 1 >= todo[p][1]:
                        del todo[p]
        finally:
            self._consumer.unassign()
        if todo:
            raise TimeoutError(f"records of partitions {sorted(todo)} not read in {timeout:.0f}s")
        return out

    def close(self) -> None:
        self._consumer.close()
