"""A write on a connection closed under it (redis-py issue #4287) is a ConnectionError here.

redis-py's asyncio connection leaks ``AttributeError: 'NoneType' object has no attribute
'writelines'`` when its writer is gone at write time; the Redis Cluster test met it when a
primary restarted mid-stream, and the worker died on it (no retry layer knew the error).
"""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions as rex
from redis.asyncio.connection import Connection

from llmrec_stream.redis_conn import (
    RETRYABLE,
    closed_writes_as_connection_errors,
    leaked_write_error,
)


def _write_on_a_closed_connection() -> None:
    conn = Connection()  # never connected: its writer is None, as after a close under it
    asyncio.run(conn._send_packed_command([b"PING\r\n"]))  # noqa: SLF001


def test_redis_py_leaks_the_closed_write_as_an_attribute_error() -> None:
    with pytest.raises(AttributeError) as caught:
        _write_on_a_closed_connection()
    assert leaked_write_error(caught.value)


def test_the_closed_write_becomes_a_retryable_connection_error() -> None:
    with pytest.raises(rex.ConnectionError) as caught:
        with closed_writes_as_connection_errors():
            _write_on_a_closed_connection()
    assert isinstance(caught.value, RETRYABLE)
    assert isinstance(caught.value.__cause__, AttributeError)


def test_other_attribute_and_type_errors_stay_what_they_are() -> None:
    with pytest.raises(AttributeError):
        with closed_writes_as_connection_errors():
            None.missing  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(TypeError):
        with closed_writes_as_connection_errors():
            len(3)  # type: ignore[arg-type]
    assert not leaked_write_error(ValueError("x"))
