"""Integration tier: one real broker and one real Redis for the whole test session.

Set LLMREC_KAFKA_BOOTSTRAP and/or LLMREC_REDIS_URL to run against external services instead;
whatever is not set is started embedded. Every test under this folder is marked ``integration``
(by ``tests/conftest.py``), so ``pytest -m 'not integration'`` skips the tier.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    """The session's broker, Redis and topics (4 partitions each)."""
    with DevStack.from_env() as dev_stack:
        yield dev_stack


@pytest.fixture
def redis_client(stack: DevStack) -> Iterator[redis.Redis]:
    """A client of the session's Redis, on an emptied database."""
    client = redis.Redis.from_url(stack.redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def watcher(stack: DevStack) -> Iterator[OutputWatcher]:
    """What the stack's output topics carry from now on (``stack``: the module's own where it
    has one)."""
    w = OutputWatcher(stack.kafka_bootstrap)
    w.start(stack.partitions)
    time.sleep(0.5)  # assignment at the end offsets happens before anything is produced
    try:
        yield w
    finally:
        w.stop()
