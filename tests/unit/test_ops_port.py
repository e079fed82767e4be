"""The ops port's WSGI app on a real loopback socket: routes, status codes, and readiness
bodies that name a failing check by its exception class, never by its message."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from llmrec_stream.health import NotReady, OpsServer, Readiness, serve

SECRET = "redis://:hunter2@cache:6379"  # noqa: S105 - must never reach a response


def _fail() -> None:
    raise ConnectionError(f"cannot reach {SECRET}")


def _building() -> None:
    raise NotReady("building")


def _ok() -> None:
    return None


@pytest.fixture
def checks() -> dict[str, Any]:
    return {"pipeline": _ok, "redis": _ok}


@pytest.fixture
def server(checks: dict[str, Any]) -> Iterator[OpsServer]:
    registry = CollectorRegistry()
    Counter("llmrec_probe", "A counter to find in /metrics.", registry=registry).inc()
    ops = serve(registry, 0, "127.0.0.1", Readiness(checks))
    try:
        yield ops
    finally:
        ops.close()


def _get(server: OpsServer, path: str) -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - loopback
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metrics_healthz_and_unknown_paths(server: OpsServer) -> None:
    status, kind, body = _get(server, "/metrics")
    assert status == 200 and kind.startswith("text/plain") and "llmrec_probe_total 1.0" in body
    assert _get(server, "/healthz")[:2] == (200, "application/json")
    assert json.loads(_get(server, "/healthz")[2]) == {"status": "alive"}
    assert _get(server, "/nope")[0] == 404


def test_readyz_ready(server: OpsServer) -> None:
    status, _kind, body = _get(server, "/readyz")
    assert status == 200
    assert json.loads(body) == {"status": "ready", "checks": {"pipeline": "ok", "redis": "ok"}}


def test_readyz_names_what_is_not_ready_without_its_message() -> None:
    readiness = Readiness({"pipeline": _building, "redis": _fail})
    ready, report = readiness.report()
    assert not ready and report == {"pipeline": "building", "redis": "ConnectionError"}
    ops = serve(CollectorRegistry(), 0, "127.0.0.1", readiness)
    try:
        status, _kind, body = _get(ops, "/readyz")
    finally:
        ops.close()
    assert status == 503 and "hunter2" not in body
    assert json.loads(body) == {"status": "not ready",
                                "checks": {"pipeline": "building", "redis": "ConnectionError"}}
