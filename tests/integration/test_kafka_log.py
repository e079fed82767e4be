"""Reading a topic to its end when its last offsets hold no record a consumer sees.

Through the real broker: noida-db supports transactions, so an aborted (or still open)
transaction at the tail of a partition is written the way a transactional producer writes it.
The read runs in a thread with a watchdog, so the old behaviour (waiting for a record at
``end - 1`` forever) fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Producer

from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.topics import create_topics
from llmrec_stream.events.records import RawRecord
from llmrec_stream.events.topics import TopicSpec
from llmrec_stream.kafka_log import LogReadTimeout, read_records

WATCHDOG_S = 30.0


@pytest.fixture
def topic(stack: DevStack) -> str:
    name = f"test.log.{uuid.uuid4().hex[:8]}"
    create_topics(stack.kafka_bootstrap, 1, [TopicSpec(name)])
    return name


@pytest.fixture
def two_partitions(stack: DevStack) -> str:
    name = f"test.log.{uuid.uuid4().hex[:8]}"
    create_topics(stack.kafka_bootstrap, 2, [TopicSpec(name)])
    return name


def _plain(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        producer.produce(topic, v, b"k")
    producer.flush(10)


def _transactional(bootstrap: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap,
                         "transactional.id": f"test-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(10)
    return producer


def _read_in_thread(**kwargs: object) -> tuple[list[RawRecord] | BaseException | None, float]:
    """(what the read returned or raised, seconds); None while it is still running."""
    out: list[list[RawRecord] | BaseException | None] = [None]

    def run() -> None:
        try:
            out[0] = list(read_records(**kwargs))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out[0] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)  # a hung read must not hold pytest
    thread.start()
    thread.join(WATCHDOG_S)
    return out[0], time.monotonic() - started


def _values(result: list[RawRecord] | BaseException | None) -> list[bytes | None]:
    assert isinstance(result, list), f"the read did not finish in {WATCHDOG_S}s: {result!r}"
    return [r.value for r in result]


def test_a_partition_ending_in_an_aborted_transaction_is_read_to_its_end(
    stack: DevStack, topic: str
) -> None:
    _plain(stack.kafka_bootstrap, topic, [b"a", b"b"])
    txn = _transactional(stack.kafka_bootstrap)
    txn.begin_transaction()
    txn.produce(topic, b"committed", b"k")
    txn.commit_transaction(10)
    txn.begin_transaction()
    for v in (b"x", b"y", b"z"):
        txn.produce(topic, v, b"k")
    txn.flush(10)
    txn.abort_transaction(10)  # the tail: three aborted records and an abort marker
    result, took = _read_in_thread(bootstrap=stack.kafka_bootstrap, topic_names=[topic])
    print(f"\nread to the end past an aborted tail in {took:.2f}s")
    assert _values(result) == [b"a", b"b", b"committed"]
    assert took < 10


def test_a_partition_ending_in_a_commit_marker_is_read_to_its_end(
    stack: DevStack, topic: str
) -> None:
    txn = _transactional(stack.kafka_bootstrap)
    txn.begin_transaction()
    txn.produce(topic, b"only", b"k")
    txn.commit_transaction(10)
    result, took = _read_in_thread(bootstrap=stack.kafka_bootstrap, topic_names=[topic])
    assert _values(result) == [b"only"]
    assert took < 10


@pytest.fixture
def open_transaction(stack: DevStack, topic: str) -> Iterator[Producer]:
    txn = _transactional(stack.kafka_bootstrap)
    txn.begin_transaction()
    try:
        yield txn
    finally:
        txn.abort_transaction(10)


def test_an_open_transaction_ends_the_read_at_the_last_stable_offset(
    stack: DevStack, topic: str, open_transaction: Producer
) -> None:
    """What the broker reports as the end, read_committed: nothing past the open transaction
    (what could be reproduced: it never hangs, it stops short of the pending records)."""
    _plain(stack.kafka_bootstrap, topic, [b"a"])
    open_transaction.produce(topic, b"pending", b"k")
    open_transaction.flush(10)
    _plain(stack.kafka_bootstrap, topic, [b"after"])  # held back behind the open transaction
    result, took = _read_in_thread(bootstrap=stack.kafka_bootstrap, topic_names=[topic])
    assert _values(result) == [b"a"]
    assert took < 10


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    """The broker process stopped (SIGSTOP): connected, silent; then continued."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_read_that_stops_making_progress_raises_a_clear_timeout(
    stack: DevStack, two_partitions: str
) -> None:
    """The broker stops answering (frozen) after the end offsets were read: the second
    partition can never be fetched, and the read says so instead of waiting forever."""
    if stack.broker is None or stack.broker.pid is None:
        pytest.skip("needs the embedded broker (its process is frozen)")
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    for p in (0, 1):
        for v in (b"a", b"b"):
            producer.produce(two_partitions, v, b"k", partition=p)
    producer.flush(10)
    reader = read_records(stack.kafka_bootstrap, [two_partitions], timeout_s=2.0)
    first = next(reader)  # both partitions' end offsets are known; partition 0 is fetched
    assert first.partition == 0
    started = time.monotonic()
    with _frozen(stack.broker.pid), pytest.raises(LogReadTimeout) as raised:
        list(reader)
    took = time.monotonic() - started
    print(f"\nbroker frozen: {raised.value} after {took:.2f}s")
    assert f"{two_partitions}[1]" in str(raised.value)
    assert "LLMREC_LOG_READ_TIMEOUT_S" in str(raised.value)
    assert took < 10
