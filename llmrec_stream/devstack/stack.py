"""DevStack: the broker, Redis and topics a laptop, CI or the demo needs, in one object."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from llmrec_stream.devstack.cluster import EmbeddedCluster
from llmrec_stream.devstack.process import DevStackError
from llmrec_stream.devstack.services import Broker, RedisServer
from llmrec_stream.devstack.topics import create_topics

KAFKA_ENV = "LLMREC_KAFKA_BOOTSTRAP"
REDIS_ENV = "LLMREC_REDIS_URL"
FETCH_BACKOFF_ENV = "LLMREC_FETCH_IDLE_BACKOFF_MS"


class DevStack:
    """Start what is missing, create the topics, and clean everything up.

    A service given by address (``kafka_bootstrap``, ``redis_url``) is used as is and not
    started; the topics are created on the broker either way, before any client can auto-create
    them. Embedded servers bind free loopback ports. Without ``workdir`` their data lives in a
    temporary directory that :meth:`stop` removes; with one, data and logs stay there.

    :meth:`stop` is registered with atexit, runs on leaving a ``with`` block (KeyboardInterrupt
    included) and after a failed :meth:`start`, and is safe to call twice. On Linux the children
    also die with this process even if it is SIGKILLed (see ``process._die_with_parent_hook``).
    """

    def __init__(
        self,
        partitions: int = 4,
        kafka_bootstrap: str | None = None,
        redis_url: str | None = None,
        workdir: Path | None = None,
        *,
        redis_persistence: bool = False,
        redis_cluster: bool = False,
        start_timeout: float = 30.0,
    ) -> None:
        self.redis_cluster = redis_cluster
        self.cluster: EmbeddedCluster | None = None
        self.partitions = partitions
        self.redis_persistence = redis_persistence
        self.start_timeout = start_timeout
        self._external_kafka = kafka_bootstrap
        self._external_redis = redis_url
        self._workdir_arg = workdir
        self._workdir: Path | None = None
        self.broker: Broker | None = None
        self.redis: RedisServer | None = None
        self._started = False

    @classmethod
    def from_env(cls, partitions: int = 4, *, environ: Mapping[str, str] | None = None) -> DevStack:
        """A stack that uses ``LLMREC_KAFKA_BOOTSTRAP`` / ``LLMREC_REDIS_URL`` when set (and
        non-empty) and embeds whichever is missing; ``environ`` defaults to ``os.environ``."""
        env = os.environ if environ is None else environ
        return cls(
            partitions,
            kafka_bootstrap=env.get(KAFKA_ENV) or None,
            redis_url=env.get(REDIS_ENV) or None,
        )

    @property
    def kafka_bootstrap(self) -> str:
        """``bootstrap.servers`` of the broker in use."""
        if self._external_kafka is not None:
            return self._external_kafka
        if self.broker is None:
            raise DevStackError("the dev stack is not started")
        return self.broker.bootstrap

    @property
    def redis_url(self) -> str:
        """URL of the Redis in use."""
        if self._external_redis is not None:
            return self._external_redis
        if self.cluster is not None:
            return self.cluster.url
        if self.redis is None:
            raise DevStackError("the dev stack is not started")
        return self.redis.url

    @property
    def workdir(self) -> Path | None:
        """Where the embedded servers keep data and logs (None before start or if none runs)."""
        return self._workdir

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the servers this stack runs, by service (``kafka``, ``redis``)."""
        servers = (self.broker, self.redis)
        return {s.name: s.pid for s in servers if s is not None and s.pid is not None}

    def env(self) -> dict[str, str]:
        """The settings to hand to child processes (workers, trainer, CLI)."""
        env = {KAFKA_ENV: self.kafka_bootstrap, REDIS_ENV: self.redis_url}
        if self._external_kafka is None:
            # the embedded broker answers empty fetches at once: see streams/compat.py
            env[FETCH_BACKOFF_ENV] = "25"
        return env

    def start(self) -> DevStack:
        """Start the missing services and create the topics; a no-op when already started.

        If anything fails, whatever was started is stopped before the error propagates.
        """
        if self._started:
            return self
        self._started = True
        atexit.register(self.stop)
        try:
            if self._external_kafka is None:
                workdir = self._make_workdir()
                self.broker = Broker(workdir / "kafka", workdir / "kafka.log")
                self.broker.start(self.start_timeout)
            create_topics(self.kafka_bootstrap, self.partitions, timeout=self.start_timeout)
            if self._external_redis is None and self.redis_cluster:
                workdir = self._make_workdir()
                self.cluster = EmbeddedCluster(
                    workdir / "redis-cluster", start_timeout=self.start_timeout
                ).start()
            elif self._external_redis is None:
                workdir = self._make_workdir()
                self.redis = RedisServer(
                    workdir / "redis", workdir / "redis.log", persistence=self.redis_persistence
                )
                self.redis.start(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers this stack started and remove its temporary directory."""
        redis_server, broker, workdir = self.redis, self.broker, self._workdir
        cluster, self.cluster = self.cluster, None
        self.redis = self.broker = None
        self._workdir = None
        self._started = False
        atexit.unregister(self.stop)
        try:
            if redis_server is not None:
                redis_server.stop()
            if cluster is not None:
                cluster.stop()
        finally:
            if broker is not None:
                broker.stop()
            if workdir is not None and self._workdir_arg is None:
                shutil.rmtree(workdir, ignore_errors=True)

    def restart_broker(self, down_s: float = 0.0) -> None:
        """Stop and start the embedded broker on the same port and data directory.

        Topics, messages and committed offsets survive, because noida-db saves its state on
        SIGTERM (it also snapshots about twice a second, so a SIGKILL loses the last moment).
        """
        if self.broker is None:
            raise DevStackError("no embedded broker to restart (external, or not started)")
        self.broker.restart(self.start_timeout, down_s)

    def restart_redis(self, down_s: float = 0.0) -> None:
        """Stop and start the embedded Redis on the same port and data directory.

        Without ``redis_persistence`` the data is lost: a restart is then a Redis that forgot
        every profile, which is one of the faults the workers must survive.
        """
        if self.redis is None:
            raise DevStackError("no embedded Redis to restart (external, or not started)")
        self.redis.restart(self.start_timeout, down_s)

    def restart_cluster_node(self, index: int, down_s: float = 0.0) -> None:
        """Stop and start one primary of the embedded Redis Cluster (same port, its AOF and
        ``nodes.conf``): it comes back with its data and slots."""
        if self.cluster is None:
            raise DevStackError("no embedded Redis Cluster to restart")
        self.cluster.restart_node(index, down_s)

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _make_workdir(self) -> Path:
        if self._workdir is not None:
            return self._workdir
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="llmrec-devstack-"))
        return self._workdir
