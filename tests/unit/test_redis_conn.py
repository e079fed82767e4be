"""Settings select the Redis client: one server, or a cluster by flag or by URL scheme."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import redis.exceptions as rex

from llmrec_stream.config import Settings
from llmrec_stream.redis_conn import RETRYABLE, ScriptingCluster, async_client, split_url


def test_a_cluster_url_is_a_plain_url_plus_the_cluster_flag() -> None:
    assert split_url("redis+cluster://h:7000/0") == ("redis://h:7000/0", True)
    assert split_url("rediss+cluster://u:p@h:7000") == ("rediss://u:p@h:7000", True)
    assert split_url("redis://h:6379/0") == ("redis://h:6379/0", False)
    assert split_url("redis://h:6379/0", cluster=True) == ("redis://h:6379/0", True)


def test_settings_pick_the_client_class() -> None:
    async def build() -> list[object]:
        clients = [
            async_client(Settings(redis_url="redis://127.0.0.1:1/0").redis),
            async_client(Settings(redis_url="redis://127.0.0.1:1/0", redis_cluster=True).redis),
            async_client(Settings(redis_url="redis+cluster://127.0.0.1:1/0").redis),
        ]
        for c in clients:
            await c.aclose()
        return [type(c) for c in clients]

    single, by_flag, by_url = asyncio.run(build())
    assert single is aioredis.Redis
    assert by_flag is ScriptingCluster and by_url is ScriptingCluster


def test_the_errors_of_a_cluster_between_states_are_retried() -> None:
    for error in (
        rex.ClusterDownError,
        rex.MasterDownError,
        rex.TryAgainError,
        rex.SlotNotCoveredError,
        rex.ConnectionError,
        rex.TimeoutError,
        rex.BusyLoadingError,
    ):
        assert issubclass(error, RETRYABLE), error
    for other in (rex.ResponseError, rex.NoScriptError, rex.DataError):
        assert not issubclass(other, RETRYABLE), other
