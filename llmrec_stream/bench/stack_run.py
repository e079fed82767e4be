"""What `bench pipeline` and `bench swap` share: one embedded stack with a catalog, workers
that come and go on it, the group's lag, and a worker process's CPU and peak RSS from /proc.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import redis

from llmrec_stream.bench.outputs import Outputs
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.events import topics
from llmrec_stream.kafka_lag import lag_consumer, partition_lag
from llmrec_stream.replay import producer

EVENT_TOPICS = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS]
#: Shares of comments, clicks and purchases in the synthetic stream.
MIX = (0.3, 0.5, 0.2)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(check: Any, timeout: float, what: str, worker: WorkerProcess) -> None:
    worker.wait_until(check, timeout, what)


class LagProbe:
    """Events the workers' group has not committed yet, through one long-lived consumer
    (a consumer per check, five times a second, cost the 2-core machine CPU the workers
    were being measured on)."""

    def __init__(self, bootstrap: str, group_id: str, partitions: int) -> None:
        self._consumer = lag_consumer(bootstrap, group_id)
        self._tps = [(t, p) for t in EVENT_TOPICS for p in range(partitions)]

    def __call__(self) -> int:
        return sum(partition_lag(self._consumer, self._tps).values())

    def close(self) -> None:
        self._consumer.close()


class BenchRun:
    """One embedded stack, one catalog, workers that come and go."""

    def __init__(self, stack: DevStack, encoder_dir: Path, precision: str, logdir: Path) -> None:
        self.stack = stack
        self.app_id = f"bench-{uuid.uuid4().hex[:6]}"
        self.env = {
            **stack.env(),
            "LLMREC_ENCODER_DIR": str(encoder_dir),
            "LLMREC_ENCODER_PRECISION": precision,
            "LLMREC_APP_ID": self.app_id,
            "LLMREC_METRICS_PORT": "0",
        }
        self.logdir = logdir
        self.prod = producer(stack.kafka_bootstrap)
        self.redis = redis.Redis.from_url(stack.redis_url)
        self._lag = LagProbe(stack.kafka_bootstrap, self.app_id, stack.partitions)
        self.outputs = Outputs(stack.kafka_bootstrap, stack.partitions)

    def worker(self, n: int = 0) -> WorkerProcess:
        w = WorkerProcess(self.env, self.logdir / f"worker-{n}.log", worker_id=f"{self.app_id}-{n}")
        w.start()
        return w

    def lag(self) -> int:
        return self._lag()

    def close(self) -> None:
        self._lag.close()
        self.outputs.close()
        self.prod.flush(10)
