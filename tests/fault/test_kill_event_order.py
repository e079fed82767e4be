"""kill -9 during a catch-up leaves the same Redis as an uninterrupted run, key by key (issue 19).

A backlog of comments, clicks and purchases is produced before the worker starts (a new
deployment, a restart after downtime); the worker is killed with SIGKILL several times while it
catches up and restarted. Then the same log is consumed again from offset 0 by a fresh consumer
group into an emptied profile space, uninterrupted. Every profile key must be equal: counters,
spend, watermarks, attributes, bought items, recent items in event-time order, and the vectors
within int16 rounding. Before the fix the recent lists followed consumption order and differed
for nearly every user.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.sources.synthetic import synthetic_replay
from llmrec_stream.verify import compare, expected_profiles, read_log
from tests.integration.live import EVENT_TOPICS, LiveWorker
from tests.integration.profile_state import (
    differences,
    profile_snapshot,
    users_with_other_recent,
)

KILLS = int(os.environ.get("LLMREC_ORDER_KILLS", "4"))
EVENTS = int(os.environ.get("LLMREC_ORDER_EVENTS", "8000"))
USERS = int(os.environ.get("LLMREC_ORDER_USERS", "300"))


def _catch_up(worker: LiveWorker, timeout: float) -> None:
    worker.wait_caught_up(timeout=timeout)


def test_kill_9_during_a_backlog_gives_the_state_of_an_uninterrupted_run(
    fault_stack: DevStack, encoder_dir: Path, text_encoder: TextEncoder, tmp_path: Path
) -> None:
    world = synthetic_replay(n_items=200, n_users=USERS, n_events=EVENTS, seed=19,
                             mix=(0.2, 0.5, 0.3))
    rng = random.Random(19)
    first = LiveWorker(fault_stack, encoder_dir, tmp_path, app_id="order-killed").start()
    try:
        # the catalog first (the backfill of unknown items is another issue's), then stop
        first.publish(world.items)
        first.wait_catalog(len(world.items))
        assert first.stop() == 0, first.proc.log_tail()
        first.publish(world.users + world.events, live=False)  # the backlog
        first.producer.flush(30)
        first.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(4.0, 8.0))
            first.proc.kill()
            first.proc.start()  # same worker id: static membership takes the partitions back
        _catch_up(first, timeout=max(300.0, EVENTS / 20))
        assert first.stop() == 0, first.proc.log_tail()
    finally:
        first.stop()
    client = first.redis
    killed = profile_snapshot(client, text_encoder.dim)
    log = read_log(fault_stack.kafka_bootstrap, EVENT_TOPICS, fault_stack.partitions)
    expected, rejected = expected_profiles(log, {e.key for e in world.items})
    report = compare(client, expected, FusionWeights(), encoder=text_encoder, vector_users=100)

    # the uninterrupted run: same log, a fresh group, the profiles emptied (catalog kept)
    for key in client.scan_iter(match="u:*"):
        client.delete(key)
    clean = LiveWorker(fault_stack, encoder_dir, tmp_path, app_id="order-clean").start()
    try:
        _catch_up(clean, timeout=max(300.0, EVENTS / 20))
        assert clean.stop() == 0, clean.proc.log_tail()
    finally:
        clean.stop()
    untouched = profile_snapshot(client, text_encoder.dim)

    users = {k.split(b"}")[0] for k in untouched}
    other_recent = users_with_other_recent(killed, untouched)
    diffs = differences(killed, untouched)
    print(f"\nkills {KILLS}, events {len(log)}, users {len(users)}: recent lists differing "
          f"between the killed and the uninterrupted run: {len(other_recent)}; keys differing: "
          f"{len(diffs)}; verifier mismatches (killed run): {len(report.mismatches)}")
    assert not rejected
    assert len(users) >= USERS * 0.9
    assert not other_recent, sorted(other_recent)[:5]
    assert not diffs, diffs[:5]
    assert report.ok, report.mismatches[:5]


pytestmark = pytest.mark.timeout(max(900, int(EVENTS / 10)))
