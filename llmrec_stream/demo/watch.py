"""Watching the output side: recommendations and dead letters as a client would see them."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from llmrec_stream.events import topics
from llmrec_stream.kafka_lag import group_lag as group_lag  # the demo's and tests' name for it


@dataclass(slots=True)
class Observed:
    """What arrived on the output topics; freshness is end to end (event ts → received)."""

    freshness_s: list[float] = field(default_factory=list)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: Counter[str] = field(default_factory=Counter)
    recommendations: int = 0
    last_published_ms: int = 0
    all_records: list[dict[str, Any]] = field(default_factory=list)
    tombstones: set[str] = field(default_factory=set)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.freshness_s, q)) if self.freshness_s else float("nan")


class OutputWatcher:
    """A background consumer of ``llmrec.recommendations`` and ``llmrec.dlq`` from now on."""

    def __init__(self, bootstrap: str, *, keep_all: bool = False) -> None:
        self.keep_all = keep_all
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"llmrec-watch-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
            }
        )
        self.observed = Observed()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="output-watcher", daemon=True)

    def start(self, partitions: int) -> None:
        # assign explicitly at the end: no group rebalance to wait for, nothing missed after
        tps = [
            TopicPartition(t, p, OFFSET_END)
            for t in (topics.RECOMMENDATIONS, topics.DLQ)
            for p in range(partitions)
        ]
        self._consumer.assign(tps)
        self._thread.start()

    def snapshot(self) -> Observed:
        with self._lock:
            o = self.observed
            return Observed(list(o.freshness_s), dict(o.latest), Counter(o.dead_letters),
                            o.recommendations, o.last_published_ms, list(o.all_records),
                set(o.tombstones))

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, timeout=0.2):
                if msg.error():
                    continue
                now = time.time()
                value = msg.value()
                if value is None:  # a tombstone: an erased user
                    key = msg.key()
                    with self._lock:
                        self.observed.tombstones.add(key.decode() if key else "")
                    continue
                with self._lock:
                    if msg.topic() == topics.DLQ:
                        reason = json.loads(value).get("reason", "?")
                        self.observed.dead_letters[reason] += 1
                        continue
                    rec = json.loads(value)
                    self.observed.recommendations += 1
                    self.observed.freshness_s.append(now - rec["trigger_ts"] / 1000.0)
                    self.observed.latest[rec["user_id"]] = rec
                    self.observed.last_published_ms = max(
                        self.observed.last_published_ms, rec["published_ts"]
                    )
                    if self.keep_all:
                        rec["_received"] = now
                        self.observed.all_records.append(rec)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()
