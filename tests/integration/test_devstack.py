"""The embedded dev stack: it starts, answers, lays out the topics, restarts, and leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from llmrec_stream.devstack import DevStack, DevStackError, TopicSetupError, create_topics
from llmrec_stream.devstack import services as devstack_services
from llmrec_stream.events.topics import ALL_TOPICS, TopicSpec

pytestmark = pytest.mark.timeout(120)

_SERVER_NAMES = ("noida-db", "redis-server")


def _cmdline(pid: int) -> str:
    """The command line of a live process, '' if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return ""
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, IndexError):
        return ""


def _server_running(pid: int) -> bool:
    """Whether ``pid`` is still one of our server binaries (guards against PID reuse)."""
    return any(name in _cmdline(pid) for name in _SERVER_NAMES)


def _servers_mentioning(text: str) -> list[int]:
    """Live server processes whose command line contains ``text`` (e.g. a work directory)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if text in _cmdline(pid) and _server_running(pid)]


def _wait_gone(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _server_running(pid)]
    return alive


def _unique_topic(stack: DevStack, partitions: int = 4) -> str:
    name = f"test.devstack.{uuid.uuid4().hex[:8]}"
    assert create_topics(stack.kafka_bootstrap, partitions, [TopicSpec(name)]) == [name]
    return name


def _round_trip(bootstrap: str, topic: str, messages: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Produce ``messages`` (key → value) to ``topic`` and read the topic back from the start."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value in messages.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0
    return _consume(bootstrap, topic, len(messages))


def _consume(bootstrap: str, topic: str, count: int) -> dict[bytes, bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    received: dict[bytes, bytes] = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received[message.key()] = message.value()
    finally:
        consumer.close()
    return received


@pytest.fixture(scope="module")
def own_stack() -> Iterator[DevStack]:
    """A private embedded stack for tests that restart services under the session's feet."""
    with DevStack(partitions=2) as dev_stack:
        yield dev_stack


def test_both_services_answer(stack: DevStack, redis_client: redis.Redis) -> None:
    assert redis_client.ping()
    metadata = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).list_topics(timeout=10)
    assert metadata.brokers
    assert stack.env() == {
        "LLMREC_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LLMREC_REDIS_URL": stack.redis_url,
        # the embedded broker answers empty fetches at once: workers pace them
        "LLMREC_FETCH_IDLE_BACKOFF_MS": "25",
    }


def test_all_topics_exist_with_partitions_and_cleanup_policy(stack: DevStack) -> None:
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    topics = admin.list_topics(timeout=10).topics
    for spec in ALL_TOPICS:
        assert len(topics[spec.name].partitions) == stack.partitions == 4, spec.name
    resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in ALL_TOPICS]
    configs = admin.describe_configs(resources)
    for spec in ALL_TOPICS:
        policy = configs[ConfigResource(ResourceType.TOPIC, spec.name)].result()["cleanup.policy"]
        assert ("compact" in policy.value) == spec.compacted, (spec.name, policy.value)


def test_produce_consume_round_trip(stack: DevStack) -> None:
    topic = _unique_topic(stack)
    messages = {f"user-{i}".encode(): f'{{"n": {i}}}'.encode() for i in range(20)}
    assert _round_trip(stack.kafka_bootstrap, topic, messages) == messages


def test_create_topics_is_idempotent(stack: DevStack) -> None:
    assert create_topics(stack.kafka_bootstrap, stack.partitions) == []


def test_create_topics_rejects_a_topic_with_other_partition_count(stack: DevStack) -> None:
    # What a client's auto-creation leaves behind: the same name with one partition.
    topic = _unique_topic(stack, partitions=1)
    with pytest.raises(TopicSetupError, match="has 1 partitions, expected 4"):
        create_topics(stack.kafka_bootstrap, 4, [TopicSpec(topic)])


def test_create_topics_rejects_an_uncompacted_topic_that_must_be(stack: DevStack) -> None:
    topic = _unique_topic(stack)
    with pytest.raises(TopicSetupError, match="cleanup.policy=compact"):
        create_topics(stack.kafka_bootstrap, 4, [TopicSpec(topic, compacted=True)])


def test_stop_leaves_no_processes_and_no_files() -> None:
    dev_stack = DevStack(partitions=1).start()
    pids, workdir = dev_stack.pids, dev_stack.workdir
    assert set(pids) == {"kafka", "redis"}
    assert all(_server_running(pid) for pid in pids.values())
    assert workdir is not None and workdir.is_dir()
    dev_stack.stop()
    assert not [pid for pid in pids.values() if _server_running(pid)]
    assert not workdir.exists()
    dev_stack.stop()  # twice is fine
    assert dev_stack.pids == {}


def test_keyboard_interrupt_in_with_block_stops_everything() -> None:
    with pytest.raises(KeyboardInterrupt), DevStack(partitions=1) as dev_stack:
        pids = dev_stack.pids
        raise KeyboardInterrupt
    assert len(pids) == 2
    assert not [pid for pid in pids.values() if _server_running(pid)]


def test_failed_start_reports_the_log_and_leaves_no_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'boom: cannot bind'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(devstack_services, "redis_server_binary", lambda: fake)
    workdir = tmp_path / "stack"
    with pytest.raises(DevStackError, match="(?s)exited with code 3.*boom: cannot bind"):
        DevStack(partitions=1, workdir=workdir).start()
    # The broker had started before Redis failed: it must be gone too.
    assert _wait_gone(_servers_mentioning(str(workdir)), timeout=0) == []
    assert (workdir / "kafka.log").exists()


def test_children_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    # A SIGKILLed parent runs no cleanup, so its work directory goes under tmp_path.
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from llmrec_stream.devstack import DevStack\n"
        "stack = DevStack(partitions=1, workdir=Path(sys.argv[1])).start()\n"
        "print(json.dumps(stack.pids), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "stack")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert parent.stdout is not None
        pids: dict[str, int] = json.loads(parent.stdout.readline())
        assert set(pids) == {"kafka", "redis"}
        assert all(_server_running(pid) for pid in pids.values())
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    survivors = _wait_gone(pids.values())
    for pid in survivors:  # don't leak them when the test fails
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


def test_from_env_uses_external_services_as_given(stack: DevStack) -> None:
    with DevStack.from_env(environ={"LLMREC_REDIS_URL": stack.redis_url}) as half:
        assert set(half.pids) == {"kafka"}
        assert half.redis_url == stack.redis_url
        assert half.kafka_bootstrap != stack.kafka_bootstrap
    with DevStack.from_env(environ=stack.env()) as external:
        assert external.pids == {}
        assert external.env() == {
            "LLMREC_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "LLMREC_REDIS_URL": stack.redis_url,
        }
    with pytest.raises(DevStackError, match="no embedded Redis"):
        DevStack(redis_url=stack.redis_url).restart_redis()


def test_restart_redis_same_port_data_lost_without_persistence(own_stack: DevStack) -> None:
    url, old_pid = own_stack.redis_url, own_stack.pids["redis"]
    redis.Redis.from_url(url).set("k", "v")
    own_stack.restart_redis()
    assert own_stack.redis_url == url
    assert own_stack.pids["redis"] != old_pid
    assert not _server_running(old_pid)
    client = redis.Redis.from_url(url)
    assert client.ping()
    assert client.get("k") is None


def test_restart_redis_keeps_data_with_persistence(stack: DevStack) -> None:
    with DevStack(kafka_bootstrap=stack.kafka_bootstrap, redis_persistence=True) as durable:
        redis.Redis.from_url(durable.redis_url).set("k", "v")
        durable.restart_redis()
        assert redis.Redis.from_url(durable.redis_url).get("k") == b"v"


def test_restart_broker_keeps_topics_and_messages(own_stack: DevStack) -> None:
    bootstrap, old_pid = own_stack.kafka_bootstrap, own_stack.pids["kafka"]
    topic = _unique_topic(own_stack, partitions=2)
    messages = {b"a": b"1", b"b": b"2"}
    assert _round_trip(bootstrap, topic, messages) == messages
    own_stack.restart_broker()
    assert own_stack.kafka_bootstrap == bootstrap
    assert not _server_running(old_pid)
    # The product's topics survive with their layout, and so do the messages.
    assert create_topics(bootstrap, own_stack.partitions) == []
    assert _consume(bootstrap, topic, len(messages)) == messages
