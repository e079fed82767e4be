"""kill -9 the worker again and again during a replay: nothing lost, nothing applied twice.

Like Kafka's system tests: a seeded killer, a replay of ≥ 20,000 events, and a verifier that
computes the expected Redis state from the input alone.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.replay import Delivered, publish
from llmrec_stream.sources.synthetic import synthetic_replay
from llmrec_stream.verify import compare, expected_profiles, missing_recommendations
from tests.integration.live import LiveWorker

N_EVENTS = 20_000
KILLS = 5
RATE = 500.0  # events/s: the replay lasts ~40 s, the kills land inside it


@pytest.fixture(scope="module")
def watcher(fault_stack: DevStack) -> Iterator[OutputWatcher]:
    w = OutputWatcher(fault_stack.kafka_bootstrap, keep_all=True)
    w.start(fault_stack.partitions)
    time.sleep(0.5)
    yield w
    w.stop()


def test_kill_9_during_replay_loses_nothing_and_applies_nothing_twice(
    fault_stack: DevStack,
    encoder_dir: Path,
    watcher: OutputWatcher,
    tmp_path_factory: pytest.TempPathFactory,
    text_encoder,  # type: ignore[no-untyped-def]
) -> None:
    world = synthetic_replay(
        n_items=200, n_users=1000, n_events=N_EVENTS, seed=5, mix=(0.1, 0.6, 0.3)
    )
    worker = LiveWorker(
        fault_stack, encoder_dir, tmp_path_factory.mktemp("kill"), app_id="fault-kill"
    ).start()
    delivered: list[Delivered] = []
    publish(worker.producer, world.items, delivered=delivered)
    worker.wait_catalog(len(world.items))

    feeder = threading.Thread(
        target=publish,
        args=(worker.producer, world.users + world.events),
        kwargs={"rate": RATE, "delivered": delivered},
    )
    rng = random.Random(42)
    recovery_s: list[float] = []
    feeder.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(3.0, 6.0))
            worker.proc.kill()
            restarted = time.time()
            worker.proc.start()
            # recommendations resume: a record published after the restart reaches a client
            worker.wait(
                lambda t=restarted: watcher.snapshot().last_published_ms >= t * 1000,
                30,
                "recommendations to resume after a restart",
            )
            recovery_s.append(time.time() - restarted)
    finally:
        feeder.join()
    fed = time.time()
    worker.wait_caught_up(timeout=240)
    caught_up = time.time()
    time.sleep(2.0)  # the last records are in flight to the watcher

    assert len(delivered) >= N_EVENTS
    expected, rejected = expected_profiles(delivered, {e.key for e in world.items})
    weights = FusionWeights()
    report = compare(worker.redis, expected, weights, encoder=text_encoder)
    print(f"\ncatch-up {caught_up - fed:.1f}s, verify {time.time() - caught_up:.1f}s")
    print(
        f"\nkills {KILLS}, events {len(delivered)}, users {report.users}, lost {report.lost}, "
        f"duplicated {report.duplicated}, recovery s {[round(r, 1) for r in recovery_s]}"
    )
    assert report.lost == 0 and report.duplicated == 0
    assert report.ok, report.mismatches[:5]
    assert not rejected
    missing = missing_recommendations(expected, watcher.snapshot().all_records)
    assert not missing, missing[:5]
    assert worker.stop() == 0
