"""The whole pipeline on a real 3-primary Redis Cluster (redis-server --cluster-enabled yes).

The design claims every Redis call touches one slot (``{user_id}`` and ``{catalog}`` hash tags),
so the workers run unchanged on a cluster. These tests run a live Faust worker against an
embedded cluster this module starts: replay twice gives identical state, every user gets
recommendations, and a primary restarted mid-stream loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from llmrec_stream.config import Settings
from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.profiles import recs
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.profiles.store import recs_key
from llmrec_stream.redis_conn import RETRYABLE, async_client
from llmrec_stream.sources.synthetic import synthetic_replay
from llmrec_stream.verify import compare, expected_profiles, missing_recommendations, read_log
from tests.fault.scenario import restart_mid_stream, run_scenario
from tests.integration.live import EVENT_TOPICS, LiveWorker
from tests.integration.profile_state import profile_bytes


@pytest.fixture
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A broker and a 3-primary Redis Cluster of each test's own: the tests' worlds reuse
    item ids with other contents, and a catalog left by one would be stale for the next."""
    with DevStack(workdir=tmp_path_factory.mktemp("cluster-stack"), redis_cluster=True) as stack:
        assert stack.redis_url.startswith("redis+cluster://")
        yield stack


def test_pipeline_on_a_cluster_is_exact_replays_identically_and_serves_every_user(
    cluster_stack: DevStack,
    encoder_dir: Path,
    text_encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    world = synthetic_replay(n_items=120, n_users=60, n_events=900, seed=21)
    watcher = OutputWatcher(cluster_stack.kafka_bootstrap, keep_all=True)
    watcher.start(cluster_stack.partitions)
    worker = LiveWorker(cluster_stack, encoder_dir, tmp_path, app_id="cluster-a").start()
    try:
        assert isinstance(worker.redis, redis.RedisCluster)
        worker.publish(world.items)
        worker.wait_catalog(len(world.items))
        worker.publish(world.users + world.events)
        worker.wait_caught_up()
        time.sleep(2.0)  # the last recommendations are in flight to the watcher

        # the state is spread over the three primaries, not parked on one
        per_node = {
            node.name: sum(1 for _ in worker.redis.scan_iter(match="u:*", target_nodes=node))
            for node in worker.redis.get_primaries()
        }
        assert len(per_node) == 3 and all(n > 0 for n in per_node.values()), per_node

        log = read_log(cluster_stack.kafka_bootstrap, EVENT_TOPICS, cluster_stack.partitions)
        expected, _ = expected_profiles(log, {e.key for e in world.items})
        assert len(expected) == 60
        report = compare(worker.redis, expected, FusionWeights(), encoder=text_encoder)
        assert report.ok, report.mismatches[:5]
        assert not missing_recommendations(expected, watcher.snapshot().all_records)
        # the pull cache holds recommendations for every user, on whichever primary
        for user in expected:
            raw = worker.redis.get(recs_key(user))
            assert raw is not None, user
            assert recs.decode(user, bytes(raw))["items"], user

        before = profile_bytes(worker.redis)
        assert len(before) >= 2 * 60  # profile and vectors (recent items inside), bought
        # a second consumer group replays every topic from offset 0 into the same cluster
        replayer = LiveWorker(cluster_stack, encoder_dir, tmp_path, app_id="cluster-b").start()
        try:
            replayer.wait_caught_up(timeout=180)
        finally:
            assert replayer.stop() == 0, replayer.proc.log_tail()
        after = profile_bytes(worker.redis)
        changed = [k for k in before if after.get(k) != before[k]]
        assert not changed, changed[:5]
        assert after == before
    finally:
        code = worker.stop()
        watcher.stop()
    assert code == 0, worker.proc.log_tail()


def test_a_primary_restarted_mid_stream_loses_nothing(
    cluster_stack: DevStack,
    encoder_dir: Path,
    text_encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    notes: dict[str, float] = {}
    # down longer than the cluster's node timeout: the others mark it failed and the
    # cluster answers CLUSTERDOWN until it is back with its AOF and nodes.conf
    restart_a_primary = restart_mid_stream(
        lambda: cluster_stack.restart_cluster_node(1, down_s=5.0),
        after_s=3.0, notes=notes, count_retries=True,
    )
    out = run_scenario(
        cluster_stack,
        encoder_dir,
        tmp_path,
        text_encoder,
        restart_a_primary,
        n_events=2_000,
        rate=150.0,
        seed=8,
        app_id="cluster-restart",
        n_users=300,
    )
    print(f"\nprimary restart: events {out.delivered}, {notes}, {out.notes}")
    assert notes["retries"] > 0
    assert out.report.lost == 0 and out.report.duplicated == 0
    assert out.report.ok, out.report.mismatches[:5]
    assert not out.missing_recommendations, out.missing_recommendations[:5]


def test_the_errors_of_a_failed_primary_are_the_ones_the_pipeline_retries(
    cluster_stack: DevStack,
) -> None:
    """With a primary down past the node timeout the cluster answers CLUSTERDOWN for every
    slot: a worker must wait that out (`RETRYABLE`), not crash, and go on once it is back."""
    cluster = cluster_stack.cluster
    assert cluster is not None
    settings = Settings(redis_url=cluster_stack.redis_url)

    async def scenario() -> tuple[BaseException, bytes | None]:
        client = async_client(settings.redis)
        try:
            await client.initialize()  # type: ignore[attr-defined]  # the slot map
            survivor = cluster.nodes[0].port
            key = next(
                k
                for k in (f"u:{{user-{n}}}:p" for n in range(1000))
                if client.get_node_from_key(k).port == survivor  # type: ignore[attr-defined]
            )
            await client.set(key, b"before")
            cluster.nodes[1].stop()
            cluster.wait_state("fail", timeout=30)
            with pytest.raises(RETRYABLE) as raised:
                await client.set(key, b"during")
            cluster.nodes[1].restart(cluster.start_timeout)
            cluster.wait_ok()
            deadline = time.monotonic() + 30
            while True:  # what StreamParts.retry does, with the same exception tuple
                try:
                    await client.set(key, b"after")
                    break
                except RETRYABLE:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            return raised.value, await client.get(key)
        finally:
            await client.aclose()

    error, value = asyncio.run(scenario())
    assert isinstance(error, redis.exceptions.ClusterDownError), repr(error)
    assert value == b"after"


pytestmark = pytest.mark.timeout(600)
