"""A real Prometheus scraping a live worker: the dashboard and the alert rules work on what
the worker exports.

The test starts Debian's ``prometheus`` (2.42; .ci/run installs it) with a config of its own in
a temporary folder: loopback port, 1 s scrape and rule evaluation, the worker as job
``llmrec-worker`` (compose's job name, which the rules use) and deploy/alerts.yml as its rule
file. While events flow through the worker it reads the freshness histogram back through
Prometheus' HTTP API, then evaluates every query of the Grafana dashboard and every alert
rule's query (the expression without its threshold) and requires each to return data. Last it
stops the worker and sees ``LlmrecWorkerDown``'s condition hold and the alert go pending.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmrec_stream.devstack.process import _die_with_parent_hook, free_port
from llmrec_stream.events import topics
from llmrec_stream.sources.base import OutboundEvent
from llmrec_stream.sources.synthetic import SyntheticReplay
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import catalog_worker, replay_world

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "llmrec-stream.json"
#: the rules' ``<query> <comparison> <threshold>`` form (tests/unit/test_alert_rules.py)
COMPARISON = re.compile(r"^(?P<query>.+?)\s+(?P<op>>=|<=|==|!=|>|<)\s+(?P<threshold>[0-9.]+)$")

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="prometheus not installed (apt-get install prometheus; .ci/run does)",
    ),
    pytest.mark.timeout(600),
]


class Prometheus:
    """A Prometheus server of this test's own, on a loopback port, data in a temporary folder."""

    def __init__(self, workdir: Path, worker_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{
                "job_name": "llmrec-worker",
                "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
            }],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        assert PROMETHEUS is not None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - the Prometheus binary on PATH
                [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509
            )

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - loopback
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log_tail()}"
            try:
                if check():
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


world = replay_world(n_items=60, n_users=8, n_events=120, seed=21)


worker = catalog_worker("prom-worker")


@pytest.fixture(scope="module")
def prometheus(
    worker: LiveWorker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    port = int(urllib.parse.urlsplit(worker.ops_url).port or 0)
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), port)
    try:
        server.wait(lambda: urllib.request.urlopen(f"{server.url}/-/ready", timeout=2).status  # noqa: S310
                    == 200, 60, "prometheus to be ready")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def traffic(worker: LiveWorker, world: SyntheticReplay) -> Iterator[None]:
    """Events flowing while the queries run (rates over the last minute need them), and one
    record of each of two dead-letter reasons."""
    worker.publish_raw(topics.CLICKS, b"u-prom", b"{not json")
    worker.publish_raw(topics.CLICKS, b"someone-else",
                       json.dumps({"schema_version": 1, "event_id": "prom-km", "ts": 1,
                                   "user_id": "u-prom", "item_id": "x"}).encode())
    stop = threading.Event()

    def feed() -> None:
        round_ = 0
        while not stop.is_set():
            round_ += 1
            batch = [OutboundEvent(e.topic, e.key, {**e.value, "event_id": f"r{round_}-{i}"})
                     for i, e in enumerate(world.events[:20])]
            worker.publish(batch)
            stop.wait(1.0)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def _dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_reads_back_the_freshness_histogram(
    worker: LiveWorker, prometheus: Prometheus, traffic: None
) -> None:
    prometheus.wait(lambda: prometheus.query("llmrec_freshness_seconds_count > 0"), 120,
                    "a scraped freshness count")
    scraped = {r["metric"]["le"]: float(r["value"][1])
               for r in prometheus.query('llmrec_freshness_seconds_bucket{job="llmrec-worker"}')}
    exported = {k.split('le="')[1].rstrip('"}'): v for k, v in worker.metrics().items()
                if k.startswith("llmrec_freshness_seconds_bucket{")}
    # the same buckets; each scraped count is one the worker exported (counts only grow)
    assert scraped.keys() == exported.keys() and "+Inf" in scraped
    assert 0 < scraped["+Inf"] <= exported["+Inf"]
    assert all(scraped[le] <= exported[le] for le in scraped)
    count = prometheus.query("llmrec_freshness_seconds_count")
    assert float(count[0]["value"][1]) == scraped["+Inf"]
    p99_expr = "histogram_quantile(0.99, sum by (le) (rate(llmrec_freshness_seconds_bucket[1m])))"
    prometheus.wait(lambda: prometheus.query(p99_expr), 60, "two scrapes of moving counts")
    p99 = float(prometheus.query(p99_expr)[0]["value"][1])
    assert 0 < p99 <= 30


def test_every_dashboard_and_rule_query_returns_data(
    prometheus: Prometheus, traffic: None
) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 12
    for rule in _rules():
        m = COMPARISON.match(rule["expr"].strip())
        assert m is not None, rule["expr"]
        queries.append((rule["alert"], m["query"]))
    empty: list[tuple[str, str]] = []
    deadline = time.monotonic() + 90  # rates need two scrapes of moving counters
    pending = list(queries)
    while pending and time.monotonic() < deadline:
        pending = [(what, expr) for what, expr in pending if not prometheus.query(expr)]
        if pending:
            time.sleep(1.0)
    empty = pending
    assert empty == [], empty
    # Prometheus evaluates the rule file itself without errors
    groups = prometheus.get("/api/v1/rules")["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {r["alert"] for r in _rules()}
    prometheus.wait(lambda: all(r.get("lastEvaluation", "").startswith("20")
                                for r in prometheus.get("/api/v1/rules")["groups"][0]["rules"]),
                    30, "every rule evaluated")
    for name, rule in loaded.items():
        assert rule["health"] == "ok" and not rule.get("lastError"), (name, rule)


def test_a_stopped_worker_makes_worker_down_pending(
    worker: LiveWorker, prometheus: Prometheus, traffic: None
) -> None:
    down = next(r for r in _rules() if r["alert"] == "LlmrecWorkerDown")
    assert prometheus.query(down["expr"]) == []  # up: the condition does not hold
    worker.stop()
    prometheus.wait(lambda: prometheus.query(down["expr"]), 30, "up == 0 after the stop")
    prometheus.wait(
        lambda: prometheus.query('ALERTS{alertname="LlmrecWorkerDown", alertstate="pending"}'),
        30, "LlmrecWorkerDown pending",
    )

