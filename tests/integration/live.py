"""A live worker for integration tests: a real Faust process on the session's stack."""

from __future__ import annotations

import contextlib
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from llmrec_stream.demo.watch import group_lag
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.process import free_port
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.events import topics
from llmrec_stream.redis_conn import sync_client
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent

EVENT_TOPICS = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS]


class LiveWorker:
    """One worker process with its own consumer group, plus the producer that feeds it."""

    def __init__(
        self,
        stack: DevStack,
        encoder_dir: Path,
        logdir: Path,
        app_id: str = "",
        worker_id: str = "",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.app_id = app_id or f"test-{uuid.uuid4().hex[:8]}"
        worker_env = {
            **stack.env(),
            "LLMREC_ENCODER_DIR": str(encoder_dir),
            "LLMREC_APP_ID": self.app_id,
            "LLMREC_PARTITIONS": str(stack.partitions),
            "LLMREC_ENCODER_THREADS": "1",
            "LLMREC_METRICS_PORT": str(free_port()),
            **(env or {}),
        }
        self.ops_url = f"http://127.0.0.1:{worker_env['LLMREC_METRICS_PORT']}"
        self.metrics_url = f"{self.ops_url}/metrics"
        worker_id = worker_id or self.app_id
        self.proc = WorkerProcess(worker_env, logdir / f"{worker_id}.log", worker_id=worker_id)
        self.producer = producer(stack.kafka_bootstrap)
        self.redis = sync_client(stack.redis_url)  # a cluster client for a cluster URL

    def start(self) -> LiveWorker:
        self.proc.start()
        return self

    def stop(self) -> int | None:
        return self.proc.stop()

    def publish(self, events: list[OutboundEvent], live: bool = True) -> None:
        publish(self.producer, events, live=live)

    def publish_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.producer.produce(topic, value, key)
        self.producer.flush(10)

    def wait(
        self, check: Callable[[], bool], timeout: float, what: str, *, supervised: bool = False
    ) -> None:
        self.proc.wait_until(check, timeout, what, supervised=supervised)

    def metrics(self) -> dict[str, float]:
        """The worker's Prometheus samples, ``name{labels}`` → value."""
        text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()  # noqa: S310
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def wait_catalog(self, n_items: int, timeout: float = 120) -> None:
        self.wait(lambda: self.redis.hlen(VECTORS) >= n_items, timeout, "catalog")

    def wait_caught_up(self, timeout: float = 120) -> None:
        self.wait(
            lambda: (
                group_lag(
                    self.stack.kafka_bootstrap, self.app_id, EVENT_TOPICS, self.stack.partitions
                )
                == 0
            ),
            timeout,
            "consumer group to catch up",
        )


@contextlib.contextmanager
def worker_with_catalog(
    stack: DevStack,
    encoder_dir: Path,
    logdir: Path,
    items: Sequence[OutboundEvent],
    env: dict[str, str] | None = None,
) -> Iterator[LiveWorker]:
    """A started worker whose catalog holds ``items``; it must stop cleanly (exit 0) after.
    ``env``: settings for this worker (``LLMREC_*``)."""
    live = LiveWorker(stack, encoder_dir, logdir, env=env).start()
    try:
        live.publish(list(items))
        live.wait_catalog(len(items))
        yield live
    finally:
        assert live.stop() == 0, live.proc.log_tail()
