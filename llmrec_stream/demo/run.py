"""``llmrec-stream demo``: the whole product on a laptop, end to end, then a summary.

Starts the embedded stack and one worker, publishes a catalog, replays user events at a
steady rate "as if live", and watches the recommendations topic like a client would. The
demo is an application of the SDK (`llmrec_stream.client`): every record goes out through
its validating `EventProducer` (an event the workers would dead-letter is refused at the call
and counted by reason), and at the end each user's recommendations are read back with its
`RedisRecommendations`, the pull side, and compared with the last record pushed on the topic.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from llmrec_stream.client import (
    Delivery,
    EventProducer,
    InvalidEvent,
    Recommendations,
    RedisRecommendations,
)
from llmrec_stream.config import Settings
from llmrec_stream.demo.shadow import ShadowDemo
from llmrec_stream.demo.watch import Observed, OutputWatcher, group_lag
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.encoder.artifact import default_encoder_dir
from llmrec_stream.events import topics
from llmrec_stream.ranking.shadow import SHADOW_KEY
from llmrec_stream.redis_conn import sync_client
from llmrec_stream.replay import restamp
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent, Replay
from llmrec_stream.sources.synthetic import SyntheticReplay

#: The topics whose records drive a user's recommendations.
USER_TOPICS = (topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS)


@dataclass(slots=True)
class Produced:
    """What the client's producer did with the records given to it."""

    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Records refused before they left, by the dead-letter reason the workers would give."""
    keys: dict[str, set[str]] = field(default_factory=dict)
    """Keys accepted per topic (the items the worker must encode, the users it serves)."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    events: int
    seconds: float
    observed: Observed
    taste_hit_rate: float | None
    produced: Produced = field(default_factory=Produced)
    pulled: dict[str, Recommendations] = field(default_factory=dict)
    """Each user's recommendations as the client's reader got them from the cache."""
    pulled_differ: int = 0
    """Users whose pulled recommendations are not the last record pushed on the topic."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def encoder_dir(settings: Settings) -> Path:
    path = Path(settings.encoder.dir) if settings.encoder.dir else default_encoder_dir()
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


def taste_hit_rate(
    replay: Replay, latest: Mapping[str, Sequence[str]], k: int = 10
) -> float | None:
    """Share of users whose top-k (``latest``: user → items) is mostly (> half) in their true
    taste category."""
    if not isinstance(replay, SyntheticReplay) or not latest:
        return None
    hits = 0
    for user_id, items in latest.items():
        cats = [replay.item_category.get(i) for i in items[:k]]
        taste = replay.user_taste.get(user_id)
        hits += sum(c == taste for c in cats) > len(cats) / 2
    return hits / len(latest)


def produce(
    client: EventProducer,
    records: Iterable[OutboundEvent],
    produced: Produced,
    *,
    rate: float | None = None,
    on_sent: Callable[[OutboundEvent], None] | None = None,
) -> None:
    """Send ``records`` through the client, paced to ``rate`` per second, each stamped with
    the wall clock at send time (the replay runs "as if live", so freshness means something).

    A record the client refuses is counted in ``produced.refused`` and the replay goes on, as
    an application would; returns once the broker acknowledged every accepted record, and
    raises `SystemExit` naming the first one it did not.
    """
    started = time.monotonic()
    futures: list[Future[Delivery]] = []
    for n, record in enumerate(records):
        if rate:
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        record = restamp(record, int(time.time() * 1000))
        try:
            futures.append(client.submit(record.topic, record.value))
        except InvalidEvent as bad:
            produced.refused[bad.reason] += 1
        else:
            produced.accepted += 1
            produced.keys.setdefault(record.topic, set()).add(record.key)
        if on_sent is not None:
            on_sent(record)
    client.flush()
    for future in futures:
        if future.exception() is not None:
            raise SystemExit(f"the broker refused a record: {future.exception()}")


def pull(
    reader: RedisRecommendations, users: Iterable[str], pushed: Mapping[str, dict[str, object]]
) -> tuple[dict[str, Recommendations], int]:
    """Each user's recommendations through the client's reader, and how many differ from the
    last record pushed for that user (the cache and the topic carry the same record)."""
    pulled = {u: rec for u in sorted(users) if (rec := reader.get(u)) is not None}
    differ = sum(
        u not in pushed or rec.items != pushed[u]["items"] for u, rec in pulled.items()
    )
    differ += sum(u not in pulled for u in pushed)
    return pulled, differ


def start_shadow(shadow: ShadowDemo, stack: DevStack, settings: Settings,
                 worker: WorkerProcess, enc: Path, out: Path) -> float:
    """Once the worker has applied what was sent, train on the log, publish in shadow, and
    wait until the worker's models agent started it and its model timer can have loaded it.
    Returns the seconds the replay stood still for it (the catch-up is the replay's time)."""
    wait_for(
        lambda: group_lag(stack.kafka_bootstrap, settings.stream.app_id, list(USER_TOPICS),
                          settings.stream.partitions) == 0,
        300, "the worker to catch up before the shadow model is trained", worker,
    )
    pause = time.monotonic()
    _publish_shadow(shadow, stack, settings, worker, enc, out)
    return time.monotonic() - pause


def _publish_shadow(shadow: ShadowDemo, stack: DevStack, settings: Settings,
                    worker: WorkerProcess, enc: Path, out: Path) -> None:
    if not shadow.train_and_publish(stack.kafka_bootstrap, enc, out):
        shadow.say(f"[bold]shadow[/]: skipped: {shadow.skipped}")
        return
    r = sync_client(stack.redis_url)
    try:
        worker.wait_until(lambda: shadow.running(r.hget(SHADOW_KEY, "version")), 60,
                          "the worker to start the shadow model")
    except TimeoutError:  # refused by its checks: the live path goes on, the demo too
        shadow.skipped = f"the worker did not start {shadow.version} in shadow (see its log)"
        shadow.say(f"[bold]shadow[/]: {shadow.skipped}")
        shadow.version = None
        return
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from exc
    finally:
        r.close()
    # the model timer loads it within a poll; events before that are not scored, only fewer
    time.sleep(2 * settings.models.poll_s)


def run_demo(
    replay: Replay,
    settings: Settings,
    *,
    rate: float,
    on_progress: Callable[[int, float, Observed], None] | None = None,
    workdir: Path | None = None,
    campaigns: Sequence[OutboundEvent] = (),
    shadow: ShadowDemo | None = None,
) -> DemoResult:
    """Run the replay through a real broker, worker and Redis; returns what a client saw.

    ``campaigns`` (``llmrec.sponsored``) go out after the catalog, before the events; every
    record is then kept (``Observed.all_records``) to count their impressions. With ``shadow``
    the replay stops at ``shadow.at`` of its events while a model is trained on the log and
    published in shadow, then goes on; its online counters are read at the end. The pause is
    not counted in the replay's time."""
    enc = encoder_dir(settings)
    with DevStack.from_env(settings.stream.partitions) as stack:
        logdir = workdir or stack.workdir or Path(tempfile.mkdtemp(prefix="llmrec-demo-"))
        env = {**stack.env(), "LLMREC_ENCODER_DIR": str(enc),
               "LLMREC_ENCODER_PRECISION": settings.encoder.precision,
               "LLMREC_PARTITIONS": str(settings.stream.partitions)}
        worker = WorkerProcess(env, logdir / "worker.log", worker_id="demo-0")
        watcher = OutputWatcher(stack.kafka_bootstrap, keep_all=bool(campaigns))
        client = EventProducer(
            stack.kafka_bootstrap,
            config={"linger.ms": 2},  # as `replay.producer`: small batches, low latency
            limits=settings.limits,
            timeout_s=60.0,
        )
        produced = Produced()
        if shadow is not None:
            shadow.warm()
        worker.start()
        try:
            watcher.start(settings.stream.partitions)
            r = sync_client(stack.redis_url)
            produce(client, replay.items, produced)
            items = len(produced.keys.get(topics.ITEMS, ()))
            wait_for(lambda: r.hlen(VECTORS) >= items, 180,
                     "the worker to encode the catalog", worker)
            produce(client, replay.users, produced)
            if campaigns:
                produce(client, campaigns, produced)
                wait_for(lambda: r.hlen("{sponsored}:campaigns") >= len(campaigns), 60,
                         "the worker to store the campaigns", worker)
                time.sleep(1.0)  # the worker's campaign table refresh (0.5 s) sees them
            started = time.monotonic()
            sent = 0
            paused = 0.0  # the shadow model's training: the replay stood still

            def progress(_: OutboundEvent) -> None:
                nonlocal sent
                sent += 1
                if on_progress is not None and sent % 100 == 0:
                    on_progress(sent, time.monotonic() - started - paused, watcher.snapshot())

            split = len(replay.events) if shadow is None else int(len(replay.events) * shadow.at)
            produce(client, replay.events[:split], produced, rate=rate, on_sent=progress)
            if shadow is not None:
                paused = start_shadow(shadow, stack, settings, worker, enc, logdir / "models")
                shadow.after, shadow.paused_s = split, paused
                produce(client, replay.events[split:], produced, rate=rate, on_sent=progress)
            wait_for(
                lambda: group_lag(stack.kafka_bootstrap, settings.stream.app_id, list(USER_TOPICS),
                                  settings.stream.partitions) == 0,
                300, "the worker to catch up", worker,
            )
            elapsed = time.monotonic() - started - paused
            time.sleep(1.0)  # the last recommendations are in flight
            observed = watcher.snapshot()
            if on_progress is not None:
                on_progress(sent, elapsed, observed)
            reader = RedisRecommendations(stack.redis_url)
            try:
                users = {u for t in USER_TOPICS for u in produced.keys.get(t, ())}
                pulled, differ = pull(reader, users, observed.latest)
            finally:
                reader.close()
            if shadow is not None:
                shadow.read(stack.redis_url)
        finally:
            watcher.stop()
            client.close()
            code = worker.stop()
        if code not in (0, None):
            raise SystemExit(f"the worker exited with {code}:\n{worker.log_tail()}")
    hit_rate = taste_hit_rate(replay, {u: rec.items for u, rec in pulled.items()})
    return DemoResult(len(replay.events), elapsed, observed, hit_rate, produced, pulled, differ)
