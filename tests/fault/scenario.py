"""One fault scenario: a worker, a paced replay, a fault injected meanwhile, then the verdict."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.replay import Delivered, producer, publish
from llmrec_stream.sources.synthetic import synthetic_replay
from llmrec_stream.verify import (
    Report,
    compare,
    expected_profiles,
    missing_recommendations,
    read_log,
)
from tests.integration.live import EVENT_TOPICS, LiveWorker

#: What a scenario does to its workers while the replay runs (it sees them and the output).
Fault = Callable[[list[LiveWorker], OutputWatcher], None]
#: `run_scenario` with the encoder and log folder bound: ``(stack, fault, **options)``.
Scenario = Callable[..., "Outcome"]
RETRIES = "llmrec_redis_retries_total"


@dataclass(slots=True)
class Outcome:
    report: Report
    delivered: int
    missing_recommendations: list[tuple[str, str]]
    rejected: dict[str, int]
    notes: dict[str, object] = field(default_factory=dict)


def run_scenario(
    stack: DevStack,
    encoder_dir: Path,
    logdir: Path,
    encoder: TextEncoder,
    fault: Fault,
    *,
    n_events: int, rate: float, seed: int, app_id: str,  # the replay, and the consumer group
    n_users: int = 1000,
    truth: str = "log",
    workers: int = 1,
    catch_up_s: float = 300.0,
) -> Outcome:
    """Replay ``n_events`` at ``rate`` while ``fault`` runs; compare Redis with the verifier.

    The comparison covers every user's counters, spend, attributes, watermarks, recent and
    bought items, and the decayed vectors (comments re-encoded with ``encoder``).

    ``truth="log"`` derives the expectations from the topics as read back at the end (Kafka
    as the source of truth); ``truth="acked"`` from the records the broker acknowledged, for
    faults where the embedded broker itself may drop acknowledged records (its restart).
    """
    world = synthetic_replay(
        n_items=200, n_users=n_users, n_events=n_events, seed=seed, mix=(0.05, 0.65, 0.3)
    )
    watcher = OutputWatcher(stack.kafka_bootstrap, keep_all=True)
    watcher.start(stack.partitions)
    crew = [
        LiveWorker(stack, encoder_dir, logdir, app_id=app_id, worker_id=f"{app_id}-{n}").start()
        for n in range(workers)
    ]
    worker = crew[0]
    # acks=all with in-order retries; not idempotent, because a broker restart can make the
    # embedded broker forget producer ids (a fatal error for an idempotent producer). Any
    # duplicate a retry writes is in the log, and the verifier reads the log.
    prod = producer(
        stack.kafka_bootstrap,
        **{
            "enable.idempotence": False,
            "acks": "all",
            "max.in.flight.requests.per.connection": 1,
        },
    )
    delivered: list[Delivered] = []
    try:
        publish(prod, world.items, delivered=delivered)
        worker.wait_catalog(len(world.items))
        feeder = threading.Thread(
            target=publish,
            args=(prod, world.users + world.events),
            kwargs={"rate": rate, "delivered": delivered},
        )
        marks = {"start": time.time()}
        feeder.start()
        try:
            fault(crew, watcher)
            marks["fault_done"] = time.time()
        finally:
            feeder.join()
        marks["fed"] = time.time()
        worker.wait_caught_up(timeout=catch_up_s)
        marks["caught_up"] = time.time()
        time.sleep(2.0)  # the last recommendations are in flight to the watcher
        log = read_log(stack.kafka_bootstrap, EVENT_TOPICS, stack.partitions)
        source = log if truth == "log" else [d for d in delivered if d.event.topic in EVENT_TOPICS]
        expected, rejected = expected_profiles(source, {e.key for e in world.items})
        # where the log holds each event: (partition, offset) of every copy (retries add some)
        stored: dict[tuple[str, object], set[tuple[int, int]]] = defaultdict(set)
        for r in log:
            stored[(r.event.topic, r.event.value.get("event_id"))].add((r.partition, r.offset))
        acked = [
            (d, stored.get((d.event.topic, d.event.value.get("event_id"))))
            for d in delivered
            if d.event.topic in EVENT_TOPICS
        ]
        lost_by_broker = [
            (d.event.topic, d.partition, d.offset, d.event.value.get("event_id"))
            for d, at in acked
            if not at
        ]
        # acknowledged records the log holds at another offset: the broker rewrote that
        # partition's tail after a restart (a consumer already past those offsets skips them)
        moved = {
            (d.event.topic, d.partition)
            for d, at in acked
            if at and (d.partition, d.offset) not in at
        }
        # partitions where the broker dropped records it had acknowledged, or moved them (and
        # may reuse their offsets): no consumer can be exact there, so their users are left
        # out and counted
        broken = {(t, p) for t, p, _, _ in lost_by_broker} | moved
        excluded = {
            str(d.event.key) for d in [*delivered, *log] if (d.event.topic, d.partition) in broken
        }
        checked = {u: e for u, e in expected.items() if u not in excluded}
        print(f"acknowledged but not in the log: {len(lost_by_broker)} {lost_by_broker[:3]}; "
              f"moved: {sorted(moved)}")
        report = compare(worker.redis, checked, FusionWeights(), encoder=encoder, vector_users=300)
        missing = missing_recommendations(checked, watcher.snapshot().all_records)
        marks["verified"] = time.time()
        print({k: round(v - marks["start"], 1) for k, v in marks.items()})
        for w in crew:
            if w.proc.alive:  # a worker a fault killed for good has nothing left to stop
                assert w.stop() == 0, w.proc.log_tail()
    finally:
        for w in crew:
            w.stop()
        watcher.stop()
    return Outcome(
        report,
        len(delivered),
        missing,
        dict(rejected),
        {
            "lost_by_broker": len(lost_by_broker),
            "partitions_moved": len(moved),
            "users_left_out": len(excluded),
            "users_checked": len(checked),
        },
    )


def restart_mid_stream(
    restart: Callable[[], None],
    *,
    after_s: float,
    notes: dict[str, float],
    count_retries: bool = False,
) -> Fault:
    """A fault: ``after_s`` into the replay, ``restart`` a service under the first worker,
    which must live through it (the same process after as before).

    Notes in ``notes`` the seconds until recommendations resumed (``resumed_s``) and, with
    ``count_retries``, the Redis retries the worker made meanwhile (``retries``).
    """

    def fault(crew: list[LiveWorker], watcher: OutputWatcher) -> None:
        worker = crew[0]
        time.sleep(after_s)
        retries_before = worker.metrics().get(RETRIES, 0.0) if count_retries else 0.0
        restart()
        back = time.time()
        notes["resumed_s"] = wait_resumed(worker, watcher, back)
        if count_retries:
            notes["retries"] = worker.metrics()[RETRIES] - retries_before
        assert worker.proc.alive

    return fault


def wait_resumed(worker: LiveWorker, watcher: OutputWatcher, since: float) -> float:
    """Seconds from ``since`` until a recommendation published after it reached a client."""
    worker.wait(
        lambda: watcher.snapshot().last_published_ms >= since * 1000,
        30,
        "recommendations to resume",
    )
    return time.time() - since

