"""The worker's operations port: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for
the orchestrator, from one small WSGI app.

prometheus_client's own server is the standard library's ``wsgiref`` with a thread per
request; this serves the same way (stdlib only, no web framework in the runtime install) and
routes two more paths beside its metrics app:

- ``/healthz``: 200 while the process serves HTTP (liveness: the Dockerfile's HEALTHCHECK).
- ``/readyz``: 200 once the pipeline is built and Kafka and Redis answer, 503 otherwise, with
  a JSON body naming each check (readiness: compose's worker healthcheck). A Redis outage
  makes a worker unready, not dead: it waits for Redis (backpressure) and is ready again
  when Redis is back, so an orchestrator must not restart it on ``/readyz``.

The checks run in the request's thread, never on the worker's event loop, each bounded by
``health_check_timeout_s``; failures are reported by exception class, never by message (a
message may carry an address or a credential).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from llmrec_stream.config import Settings
from llmrec_stream.kafka_lag import lag_consumer, partition_lag
from llmrec_stream.redis_conn import sync_client
from llmrec_stream.security import confluent_config, redis_options

if TYPE_CHECKING:
    from llmrec_stream.metrics import Metrics

Check = Callable[[], None]
StartResponse = Callable[..., Any]


class NotReady(RuntimeError):
    """A readiness check's own verdict (e.g. the pipeline is still being built)."""


class Readiness:
    """Named checks; each returns when its part is ready and raises when it is not."""

    def __init__(self, checks: Mapping[str, Check]) -> None:
        self.checks = dict(checks)

    def report(self) -> tuple[bool, dict[str, str]]:
        """(all ready, check → ``"ok"`` or why not: `NotReady`'s text or an exception class)."""
        out: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
            except NotReady as exc:
                out[name] = str(exc)
            except Exception as exc:  # any failure is "not ready", named by its class only
                out[name] = type(exc).__name__
            else:
                out[name] = "ok"
        return all(v == "ok" for v in out.values()), out


def make_app(registry: CollectorRegistry, readiness: Readiness) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: ``/metrics`` (and ``/``), ``/healthz``, ``/readyz``; 404 elsewhere."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/metrics", "/"):
            return metrics_app(environ, start_response)
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "alive"})
        if path == "/readyz":
            ready, checks = readiness.report()
            status = "200 OK" if ready else "503 Service Unavailable"
            return _json(start_response, status,
                         {"status": "ready" if ready else "not ready", "checks": checks})
        return _json(start_response, "404 Not Found", {"error": "not found"})

    return app


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a probe in flight never holds the process at exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line each."""


class OpsServer:
    """The running server (a daemon thread); ``port`` is the bound one (0 picks a free one)."""

    def __init__(self, httpd: WSGIServer) -> None:
        self._httpd = httpd
        self.port: int = httpd.server_port
        self._thread = threading.Thread(target=httpd.serve_forever, name="ops-http",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve(registry: CollectorRegistry, port: int, addr: str, readiness: Readiness) -> OpsServer:
    """Start serving `make_app` on ``addr:port`` in a background thread."""
    httpd = make_server(addr, port, make_app(registry, readiness), server_class=_Server,
                        handler_class=_Quiet)
    return OpsServer(httpd)


class WorkerProbes:
    """What a worker's ops port asks Kafka and Redis: its own clients, apart from the
    pipeline's (those live on the event loop; these run in request threads)."""

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.metrics.health_check_timeout_s
        self._lock = threading.Lock()  # one librdkafka call at a time from the request threads
        self._consumer = lag_consumer(settings.kafka.bootstrap, settings.stream.app_id,
                                      confluent_config(settings.kafka))
        self._redis_settings = settings.redis  # all the Redis probe needs
        self._redis: redis.Redis | None = None

    def kafka(self) -> None:
        with self._lock:
            self._consumer.list_topics(timeout=self.timeout)

    def redis(self) -> None:
        if self._redis is None:  # built on first use: a cluster client connects when built
            self._redis = sync_client(
                self._redis_settings.url,
                self._redis_settings.cluster,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),  # a probe answers now; the pipeline retries
                **redis_options(self._redis_settings),
            )
        self._redis.ping()

    def lag(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        with self._lock:
            return partition_lag(self._consumer, partitions, timeout=self.timeout)


def serve_worker(
    settings: Settings,
    metrics: Metrics,
    built: Callable[[], bool],
    assigned: Callable[[], Iterator[tuple[str, int]]],
) -> OpsServer:
    """A worker's ops port on ``settings.metrics.port``: metrics with consumer lag of the
    ``assigned`` partitions, liveness, and readiness (``built``, Kafka, Redis)."""
    probes = WorkerProbes(settings)
    metrics.watch_lag(assigned, probes.lag)

    def pipeline() -> None:
        if not built():
            raise NotReady("building")

    readiness = Readiness({"pipeline": pipeline, "kafka": probes.kafka, "redis": probes.redis})
    # every interface: scraped by Prometheus, probed by the orchestrator
    return serve(metrics.registry, settings.metrics.port, "0.0.0.0", readiness)  # noqa: S104
