"""Redis clients from settings: one server, or a Redis Cluster.

Every part that talks to Redis (workers, the verifier, the CLI, the pull API, the demo) builds
its client here, so one setting switches a deployment to a cluster: ``LLMREC_REDIS_CLUSTER=true``
or a ``redis+cluster://`` (``rediss+cluster://``) URL naming any node.

The data model already fits a cluster: every key of one user carries the hash tag ``{user_id}``
and every catalog key ``{catalog}``, so each Lua call and each MULTI touches one slot. What a
cluster adds is handled here: scripts must be loaded on every primary (a restarted primary
forgets them, so a pipeline that meets ``NOSCRIPT`` loads them and is sent again), and the
errors a failover or a restarting primary causes are part of `RETRYABLE`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterator
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from llmrec_stream.config import RedisSettings
from llmrec_stream.security import redis_options

log = logging.getLogger(__name__)

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: What a caller retries (the stream waits, nothing is dropped): the server is unreachable or
#: slow, or the cluster is between states: a primary down or restarting (CLUSTERDOWN, no node
#: serving a slot), a slot migrating (TRYAGAIN). A resent batch is safe: the offset
#: watermarks in each profile skip what already landed.
RETRYABLE: tuple[type[Exception], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.SlotNotCoveredError,
)


def split_url(url: str, cluster: bool = False) -> tuple[str, bool]:
    """The plain ``redis://`` URL redis-py takes, and whether it names a cluster."""
    parts = urlsplit(url)
    plain = _CLUSTER_SCHEMES.get(parts.scheme)
    if plain is not None:
        return urlunsplit(parts._replace(scheme=plain)), True
    return url, cluster


def _require_url(redis_settings: RedisSettings) -> str:
    if not redis_settings.url:
        raise RuntimeError(
            "LLMREC_REDIS_URL is not set: start the embedded stack (llmrec-stream stack) "
            "or point it at your Redis"
        )
    return redis_settings.url


def async_client(redis_settings: RedisSettings) -> aioredis.Redis:
    """The asyncio client the workers and the pull API use.

    A cluster client is typed as ``Redis``: it serves every command the stores use (keyed
    commands, pipelines, scripts, one-slot MULTI) with the same signatures.
    """
    url, cluster = split_url(_require_url(redis_settings), redis_settings.cluster)
    opts: dict[str, Any] = {"health_check_interval": 10, **redis_options(redis_settings)}
    if cluster:
        return cast(aioredis.Redis, ScriptingCluster.from_url(url, **opts))
    return aioredis.Redis.from_url(url, **opts)


def sync_client(url: str, cluster: bool = False, **opts: Any) -> redis.Redis:
    """A blocking client (the verifier, tests, the demo), a cluster one for a cluster URL."""
    plain, is_cluster = split_url(url, cluster)
    if is_cluster:
        return cast(redis.Redis, redis.RedisCluster.from_url(plain, **opts))
    return redis.Redis.from_url(plain, **opts)


def sync_client_for(redis_settings: RedisSettings) -> redis.Redis:
    """`sync_client` from the redis section (URL, cluster flag, credentials)."""
    return sync_client(_require_url(redis_settings), redis_settings.cluster,
                       **redis_options(redis_settings))


def leaked_write_error(exc: BaseException) -> bool:
    """A write on a connection the peer or another task just closed, leaked by redis-py as a
    transport-internal ``AttributeError``/``TypeError`` (``'NoneType' object has no attribute
    'writelines'``) instead of ``ConnectionError`` (redis-py issue #4287): raised inside
    redis-py's asyncio connection module, so no retry layer recognises it."""
    if not isinstance(exc, AttributeError | TypeError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith("redis/asyncio/connection.py"):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def closed_writes_as_connection_errors() -> Iterator[None]:
    """Re-raise `leaked_write_error`s as ``ConnectionError`` (part of `RETRYABLE`): the next
    use of that connection reconnects, as after any lost connection."""
    try:
        yield
    except (AttributeError, TypeError) as exc:
        if leaked_write_error(exc):
            raise rex.ConnectionError(f"connection closed during a write ({exc})") from exc
        raise


class ScriptingCluster(aioredis.RedisCluster):
    """A cluster client whose scripts survive primaries that forget them.

    redis-py's standalone pipeline loads its scripts before it runs; the cluster pipeline
    does not, and a primary restarted without its script cache answers ``NOSCRIPT``. This
    client remembers its registered scripts, loads them on every primary, and has its
    pipelines resend themselves once after loading.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scripts: dict[str, AsyncScript] = {}

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with closed_writes_as_connection_errors():
            return await super().execute_command(*args, **kwargs)

    def register_script(self, script: Any) -> AsyncScript:  # type: ignore[override]
        registered = super().register_script(script)
        self._scripts[registered.sha] = registered
        return registered

    async def script_load(self, script: Any) -> str:
        """SCRIPT LOAD on every primary (a key's slot may live on any of them)."""
        replies = await self.execute_command(
            "SCRIPT LOAD", script, target_nodes=aioredis.RedisCluster.PRIMARIES
        )
        shas = set(replies.values()) if isinstance(replies, dict) else {replies}
        return str(next(iter(shas)))

    async def load_scripts(self) -> None:
        for script in list(self._scripts.values()):
            await self.script_load(script.script)

    async def _determine_slot(self, command: str, *args: Any) -> int:
        # XREAD's keys are "movable": redis-py asks one fixed node (COMMAND GETKEYS) on every
        # call, a round trip per catalog refresh, and a call that races that node's restart
        # fails outside redis-py's errors (seen: AttributeError on a closed writer). The keys
        # follow STREAMS; the catalog log is one key.
        if command.upper() in ("XREAD", "XREADGROUP"):
            words = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
            upper = [w.upper() for w in words]
            if "STREAMS" in upper:
                rest = words[upper.index("STREAMS") + 1 :]
                keys = rest[: len(rest) // 2]
                slots = {key_slot(self.encoder.encode(k)) for k in keys}
                if len(slots) == 1:
                    return slots.pop()
                raise rex.RedisClusterException(f"{command} keys in several slots: {keys}")
        slot: int = await super()._determine_slot(command, *args)
        return slot

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise rex.RedisClusterException("shard_hint is not supported on a cluster")
        return _ScriptPipeline(self, transaction)  # type: ignore[abstract]  # set by the base


class _ScriptPipeline(ClusterPipeline):
    """A cluster pipeline that reloads scripts and resends itself once on ``NOSCRIPT``."""

    def __init__(self, client: ScriptingCluster, transaction: bool | None = None) -> None:
        super().__init__(client, transaction)
        self._sent: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self._owner = client

    def execute_command(self, *args: Any, **kwargs: Any) -> ClusterPipeline:
        self._sent.append((args, dict(kwargs)))
        return super().execute_command(*args, **kwargs)

    def __await__(self) -> Generator[Any, None, ClusterPipeline]:
        # ``await pipe.evalsha(...)`` (how a registered script queues itself) awaits the
        # pipeline: redis-py's cluster pipeline then empties its queue; this one keeps it.
        return self._ready().__await__()

    async def _ready(self) -> ClusterPipeline:
        if self.cluster_client._initialize:
            await self.cluster_client.initialize()
        return self

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> ClusterPipeline:
        """Queue an EVALSHA (redis-py blocks it in cluster pipelines because they do not
        load scripts; this one does, on ``NOSCRIPT``). Routed by its keys' slot."""
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        """As the cluster pipeline's, resent once after loading the scripts where a primary
        answered ``NOSCRIPT``: raised (``raise_on_error``) or among the replies (not)."""
        sent, self._sent = self._sent, []
        try:
            with closed_writes_as_connection_errors():
                replies: list[Any] = await super().execute(raise_on_error, allow_redirections)
        except rex.NoScriptError:
            if not self._owner._scripts:
                raise
        else:
            # raise_on_error=False hands NOSCRIPT back as a reply (profiles.store reads its
            # replies so): a primary without the scripts is handled the same way then
            if not self._owner._scripts or not any(
                isinstance(r, rex.NoScriptError) for r in replies
            ):
                return replies
        log.info("a primary lacks the scripts (restarted?): loading them, resending")
        await self._owner.load_scripts()
        for args, kwargs in sent:
            self.execute_command(*args, **kwargs)
        self._sent = []
        with closed_writes_as_connection_errors():
            again: list[Any] = await super().execute(raise_on_error, allow_redirections)
        return again
