"""The production compose file, Dockerfile and Prometheus config hang together.

No Docker engine runs here, so these checks are static: the services exist, every file they
reference is in the repository, and the scrape config points at the workers' metrics port.
"""

from __future__ import annotations

import glob
import re
import shlex
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


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


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


def _dockerignored() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and line[0] != "#"}


def test_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "redis", "topics", "worker", "trainer", "prometheus"} <= set(services)


def test_trainer_publishes_artifacts_the_workers_can_read(
    services: dict[str, dict[str, Any]],
) -> None:
    trainer, worker = services["trainer"], services["worker"]
    assert trainer["build"]["target"] == "trainer"
    assert trainer["command"][:2] == ["llmrec-stream", "train"]
    out = trainer["command"][trainer["command"].index("--out") + 1]
    assert f"models:{out}" in trainer["volumes"]
    assert f"models:{out}:ro" in worker["volumes"]  # a record's location resolves in both
    assert ("FROM", "source AS trainer") in _dockerfile_instructions()
    assert _dockerfile_instructions()[-1][0] == "CMD"  # the runtime stays the default target


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = services["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(env).upper()


def test_topics_job_runs_before_the_workers(services: dict[str, dict[str, Any]]) -> None:
    assert services["topics"]["command"] == ["llmrec-stream", "create-topics"]
    depends = services["worker"]["depends_on"]
    assert depends["topics"]["condition"] == "service_completed_successfully"


def test_worker_is_scalable_and_configured(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["command"] == ["llmrec-stream", "worker"]
    assert "container_name" not in worker and "ports" not in worker  # would block --scale
    assert "replicas" in worker["deploy"]
    for name in WORKER_ENV:
        assert name in worker["environment"], name


def test_redis_requires_a_password_from_env(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert redis["image"].split(":-", 1)[-1].startswith("redis:7")
    assert "--requirepass" in " ".join(redis["command"])
    assert "${REDIS_PASSWORD" in redis["environment"]["REDIS_PASSWORD"]
    assert "${REDIS_PASSWORD" in services["worker"]["environment"]["LLMREC_REDIS_URL"]


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
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), name
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert (context / (dockerfile or "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source}"


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
    assert stages == ["source", "export", "trainer", "runtime"]
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
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml" in mounts
