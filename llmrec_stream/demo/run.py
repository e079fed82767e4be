"""``llmrec-stream demo``: the whole product on a laptop, end to end, then a summary.

Starts the embedded stack and one worker, publishes a catalog, replays user events at a
steady rate "as if live", and watches the recommendations topic like a client would.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmrec_stream.config import Settings
from llmrec_stream.demo.watch import Observed, OutputWatcher, group_lag
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.encoder.artifact import default_encoder_dir
from llmrec_stream.events import topics
from llmrec_stream.redis_conn import sync_client
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent, Replay
from llmrec_stream.sources.synthetic import SyntheticReplay


@dataclass(frozen=True, slots=True)
class DemoResult:
    events: int
    seconds: float
    observed: Observed
    taste_hit_rate: float | None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def encoder_dir(settings: Settings) -> Path:
    path = Path(settings.encoder_dir) if settings.encoder_dir else default_encoder_dir()
    if not (path / "manifest.json").exists():
        raise SystemExit(
            f"no exported encoder at {path}: run `llmrec-stream export-encoder` first "
            "(needs the [export] extra: torch, transformers)"
        )
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess) -> None:
    try:
        worker.wait_until(check, timeout, what)
    except (RuntimeError, TimeoutError) as exc:  # the CLI ends with the reason, not a trace
        raise SystemExit(str(exc)) from exc


def taste_hit_rate(replay: Replay, observed: Observed, k: int = 10) -> float | None:
    """Share of users whose top-k is mostly (> half) in their true taste category."""
    if not isinstance(replay, SyntheticReplay) or not observed.latest:
        return None
    hits = 0
    for user_id, rec in observed.latest.items():
        cats = [replay.item_category.get(i) for i in rec["items"][:k]]
        taste = replay.user_taste.get(user_id)
        hits += sum(c == taste for c in cats) > len(cats) / 2
    return hits / len(observed.latest)


def run_demo(
    replay: Replay,
    settings: Settings,
    *,
    rate: float,
    on_progress: Callable[[int, float, Observed], None] | None = None,
    workdir: Path | None = None,
    campaigns: Sequence[OutboundEvent] = (),
) -> DemoResult:
    """Run the replay through a real broker, worker and Redis; returns what a client saw.

    ``campaigns`` (``llmrec.sponsored``) go out after the catalog, before the events; every
    record is then kept (``Observed.all_records``) to count their impressions."""
    enc = encoder_dir(settings)
    with DevStack.from_env(settings.partitions) as stack:
        logdir = workdir or stack.workdir or Path(tempfile.mkdtemp(prefix="llmrec-demo-"))
        env = {**stack.env(), "LLMREC_ENCODER_DIR": str(enc),
               "LLMREC_ENCODER_PRECISION": settings.encoder_precision,
               "LLMREC_PARTITIONS": str(settings.partitions)}
        worker = WorkerProcess(env, logdir / "worker.log", worker_id="demo-0")
        watcher = OutputWatcher(stack.kafka_bootstrap, keep_all=bool(campaigns))
        worker.start()
        try:
            watcher.start(settings.partitions)
            prod = producer(stack.kafka_bootstrap)
            r = sync_client(stack.redis_url)
            publish(prod, replay.items)
            wait_for(lambda: r.hlen(VECTORS) >= len({e.key for e in replay.items}), 180,
                     "the worker to encode the catalog", worker)
            publish(prod, replay.users)
            if campaigns:
                publish(prod, list(campaigns))
                wait_for(lambda: r.hlen("{sponsored}:campaigns") >= len(campaigns), 60,
                         "the worker to store the campaigns", worker)
                time.sleep(1.0)  # the worker's campaign table refresh (0.5 s) sees them
            started = time.monotonic()
            sent = 0

            def progress(_: OutboundEvent) -> None:
                nonlocal sent
                sent += 1
                if on_progress is not None and sent % 100 == 0:
                    on_progress(sent, time.monotonic() - started, watcher.snapshot())

            publish(prod, replay.events, rate=rate, on_sent=progress)
            event_topics = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS]
            wait_for(
                lambda: group_lag(stack.kafka_bootstrap, settings.app_id, event_topics,
                                  settings.partitions) == 0,
                300, "the worker to catch up", worker,
            )
            elapsed = time.monotonic() - started
            time.sleep(1.0)  # the last recommendations are in flight
            observed = watcher.snapshot()
            if on_progress is not None:
                on_progress(sent, elapsed, observed)
        finally:
            watcher.stop()
            code = worker.stop()
        if code not in (0, None):
            raise SystemExit(f"the worker exited with {code}:\n{worker.log_tail()}")
    return DemoResult(len(replay.events), elapsed, observed, taste_hit_rate(replay, observed))
