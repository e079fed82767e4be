"""The production install alone starts: what the image's runtime stage installs runs every
command the image and docker-compose.yml run, up to a worker that serves a recommendation.

The runtime stage of the Dockerfile installs ``.[cpu]`` and nothing else (no torch, no scipy:
those are the tooling extras). This test builds that install the way the Dockerfile does: the
files its ``source`` stage COPYs, into a fresh ``python -m venv``, with the ``pip install`` of
its ``runtime`` stage (non-editable). From that venv, against the session's embedded broker
and Redis, it runs the commands the runtime image runs: compose's ``topics`` job, the image's
``CMD`` (compose's ``worker``), its ``HEALTHCHECK`` (liveness) and compose's worker
healthcheck (readiness). The trainer service is another image
(``--target trainer``, the eval extra) and is not part of this install.

The venv is cached under ``$LLMREC_TEST_CACHE/runtime-venv/<hash>``, keyed by pyproject.toml,
the pip spec and the Python version, so later sessions only reinstall this checkout's own code
(``--no-deps``, seconds); a fresh clone (CI) builds it once per run (about a minute here).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.process import _die_with_parent_hook, free_port
from llmrec_stream.events import topics
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import synthetic_replay

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
PYPROJECT = ROOT / "pyproject.toml"

#: The runtime image's commands, as the Dockerfile and compose name them. A new one must be
#: added here with its check, or this test fails: every command the image runs is run.
KNOWN_COMMANDS = {("llmrec-stream", "create-topics"), ("llmrec-stream", "worker")}
#: What importing must work for in the runtime install: the worker, the CLI, the Faust app.
RUNTIME_MODULES = ("llmrec_stream.cli", "llmrec_stream.worker", "llmrec_stream.pipeline",
                   "llmrec_stream.encoder.runtime", "streams.app", "streams.agents")
#: Tooling extras' distributions that the runtime dependencies bring anyway
#: (huggingface-hub, which tokenizers needs, has both).
BROUGHT_BY_RUNTIME = {"tqdm", "pyyaml", "llmrec-stream"}
TOOLING_EXTRAS = ("export", "train", "eval", "bench", "dev", "test")


# --- what the Dockerfile and compose say ------------------------------------------------------

def _stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's instructions by stage name, continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            current = stages.setdefault(rest.split()[-1], [])
        current.append((word.upper(), rest.strip()))
    return stages


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _pip_spec(stage: str = "runtime") -> str:
    """The requirement a stage installs, e.g. ``.[cpu]`` (relative to /src)."""
    for word, args in _stages()[stage]:
        if word == "RUN" and "pip install" in args:
            words = shlex.split(args.split("&&")[0])
            specs = [w for w in words[2:] if not w.startswith("-")]
            assert len(specs) == 1, args
            return specs[0]
    raise AssertionError(f"the {stage} stage installs nothing with pip")


def _healthcheck(stage: str = "runtime") -> list[str]:
    for word, args in _stages()[stage]:
        if word == "HEALTHCHECK":
            return _exec_form(args.split(" CMD ", 1)[1])
    raise AssertionError(f"the {stage} stage has no HEALTHCHECK")


def _image_cmd(stage: str = "runtime") -> list[str]:
    cmds = [args for word, args in _stages()[stage] if word == "CMD"]
    return _exec_form(cmds[-1])


def _image_env(stage: str) -> dict[str, str]:
    """The ``ENV key=value ...`` pairs of a stage."""
    pairs = [w for word, args in _stages()[stage] if word == "ENV" for w in shlex.split(args)]
    return dict(pair.split("=", 1) for pair in pairs)


def _copy_sources(dest: Path) -> None:
    """What the ``source`` stage COPYs into /src, copied into ``dest`` the same way."""
    for word, args in _stages()["source"]:
        if word != "COPY" or "--from=" in args:
            continue
        *sources, target = shlex.split(args)
        for source in sources:
            for path in sorted(ROOT.glob(source)):
                to = dest / target / path.name if target.endswith("/") else dest / target
                if path.is_dir():
                    shutil.copytree(path, to, symlinks=True, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                  "*.egg-info"))
                else:
                    to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, to)


def _compose_runtime_services() -> dict[str, dict[str, Any]]:
    """The compose services built from the Dockerfile's default (runtime) target."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {
        name: s for name, s in services.items()
        if "build" in s and s["build"].get("target", "runtime") == "runtime"
    }


def _resolve(value: str) -> str:
    """``${VAR:-default}`` as compose resolves it from this environment, nesting included."""
    pattern = re.compile(r"\$\{(\w+)(?::-([^${}]*))?\}")
    while True:
        new = pattern.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
        if new == value:
            return new
        value = new


def _tooling_distributions() -> set[str]:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    names = {
        re.split(r"[\[=<>!~; ]", req, maxsplit=1)[0].lower().replace("_", "-")
        for extra in TOOLING_EXTRAS for req in extras[extra]
    }
    return names - BROUGHT_BY_RUNTIME


# --- the runtime venv ---------------------------------------------------------------------------

def _run(argv: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 600,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=dict(env), cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _clean_env(venv: Path) -> dict[str, str]:
    """This process's environment as a container would have it: the venv first on PATH and
    nothing pointing at the checkout (PYTHONPATH would import the working tree instead)."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not k.startswith("LLMREC_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def _prune(root: Path, keep: str) -> None:
    """Drop the venvs of earlier pyproject.tomls (~370 MB each) that nobody is using."""
    for lock_path in root.glob("*.lock"):
        if lock_path.stem == keep:
            continue
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another session is on it
            shutil.rmtree(root / lock_path.stem, ignore_errors=True)
            lock_path.unlink()


def _stage_venv(stage: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The install of this checkout that the Dockerfile's ``stage`` makes, built as it does."""
    spec = _pip_spec(stage)
    assert spec.startswith("."), spec  # relative to the sources the source stage copied
    src = tmp_path_factory.mktemp("src")
    _copy_sources(src)
    key = hashlib.sha256(
        PYPROJECT.read_bytes() + spec.encode() + sys.version.encode()
    ).hexdigest()[:16]
    cache = os.environ.get("LLMREC_TEST_CACHE")
    root = (Path(cache).expanduser() if cache else tmp_path_factory.mktemp("cache"))
    root = root / f"{stage}-venv"
    root.mkdir(parents=True, exist_ok=True)
    venv = root / key
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    env = _clean_env(venv)
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building or using it
        started = time.monotonic()
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)], env, src)
            _run([*pip, spec], env, src)  # as the Dockerfile: pip install ".[cpu]"
            (venv / ".complete").touch()
            what = "built"
            _prune(root, keep=key)
        else:
            # dependencies as cached (same pyproject.toml); this checkout's code, non-editable
            _run([*pip, "--no-deps", "--force-reinstall", "."], env, src)
            what = "reused, code reinstalled"
        print(f"{stage} venv {venv} {what} in {time.monotonic() - started:.1f}s")
        yield venv


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The runtime install of this checkout, built as the Dockerfile builds it."""
    yield from _stage_venv("runtime", tmp_path_factory)


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The pull API's install (the ``serve`` stage: ``.[serve]``, no encoder runtime)."""
    yield from _stage_venv("serve", tmp_path_factory)


@pytest.fixture(scope="module")
def runtime_env(runtime_venv: Path) -> dict[str, str]:
    return _clean_env(runtime_venv)


# --- the checks ---------------------------------------------------------------------------------

def test_the_runtime_install_has_no_tooling_dependency(
    runtime_venv: Path, runtime_env: dict[str, str], tmp_path: Path
) -> None:
    probe = ("import importlib.metadata as m, json; "
             "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-') "
             "for d in m.distributions()})))")
    installed = set(json.loads(_run(["python", "-c", probe], runtime_env, tmp_path).stdout))
    assert "llmrec-stream" in installed and "onnxruntime" in installed
    tooling = _tooling_distributions()
    assert {"torch", "scipy", "implicit", "transformers", "matplotlib"} <= tooling
    assert sorted(installed & tooling) == []


def test_the_runtime_modules_import_from_the_installed_package(
    runtime_venv: Path, runtime_env: dict[str, str], tmp_path: Path
) -> None:
    probe = ("import importlib, json, sys; "
             f"mods = [importlib.import_module(n) for n in {list(RUNTIME_MODULES)!r}]; "
             "print(json.dumps([m.__file__ for m in mods]))")
    env = {**runtime_env, "LLMREC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # streams.app needs one
    files = json.loads(_run(["python", "-c", probe], env, tmp_path).stdout)
    site = str(runtime_venv / "lib")
    assert all(f.startswith(site) for f in files), files  # the install, not the checkout


def test_tooling_commands_are_listed_and_say_which_extra_they_need(
    runtime_venv: Path, runtime_env: dict[str, str], tmp_path: Path
) -> None:
    listed = _run(["llmrec-stream", "--help"], runtime_env, tmp_path).stdout
    for name, extra in (("eval", "eval"), ("train", "eval"), ("bench", "bench"),
                        ("demo", "dev")):
        assert f"\n  {name} " in listed
        result = _run(["llmrec-stream", name, "--help"], runtime_env, tmp_path, check=False)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert f"[{extra}" in result.stderr and "pip install" in result.stderr, result.stderr


def test_every_command_of_the_image_and_compose_runs_up_to_a_served_recommendation(
    stack: DevStack,
    redis_client: redis.Redis,
    encoder_dir: Path,
    runtime_env: dict[str, str],
    serve_venv: Path,
    tmp_path: Path,
) -> None:
    services = _compose_runtime_services()
    commands = {tuple(s["command"]) for s in services.values()} | {tuple(_image_cmd())}
    assert commands == KNOWN_COMMANDS, "a new runtime command: give it a check here"
    worker_service = next(s for s in services.values() if s["command"] == _image_cmd())
    assert services["topics"]["command"] == ["llmrec-stream", "create-topics"]

    # the environment compose gives the worker, with the stack's addresses instead of the
    # containers' and the image's ENV for what compose leaves to the Dockerfile
    port = free_port()
    env = {**runtime_env, **{k: _resolve(str(v))
                             for k, v in worker_service["environment"].items()}}
    env.update(stack.env())
    env.update({
        "LLMREC_PARTITIONS": str(stack.partitions),
        "LLMREC_METRICS_PORT": str(port),
        "LLMREC_ENCODER_DIR": str(encoder_dir),
        "LLMREC_APP_ID": f"runtime-{uuid.uuid4().hex[:8]}",
    })
    assert env["LLMREC_WORKER_ID"] == ""  # compose leaves it to the container's hostname

    # the topics job, then the worker, in compose's order
    created = _run(["llmrec-stream", "create-topics"], env, tmp_path, timeout=120)
    assert "topics ready" in created.stdout

    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen(  # noqa: S603 - the image's CMD from the runtime venv
            _image_cmd(), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509
        )
    watcher = OutputWatcher(stack.kafka_bootstrap)
    watcher.start(stack.partitions)

    def tail() -> str:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])

    try:
        def wait(check: Any, timeout: float, what: str) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert worker.poll() is None, f"the worker exited waiting for {what}:\n{tail()}"
                if check():
                    return
                time.sleep(0.5)
            raise AssertionError(f"timed out waiting for {what}:\n{tail()}")

        # the HEALTHCHECK, exactly as Docker runs it in the container
        health = _healthcheck()
        wait(lambda: _run(health, env, tmp_path, timeout=10, check=False).returncode == 0,
             180, "the HEALTHCHECK to pass")

        world = synthetic_replay(n_items=40, n_users=2, n_events=4, seed=5)
        prod = producer(stack.kafka_bootstrap)
        publish(prod, world.items)
        wait(lambda: redis_client.hlen(VECTORS) >= len(world.items), 120, "the catalog")
        user = f"runtime-{uuid.uuid4().hex[:8]}"
        click = {**envelope(f"{user}-click-0", 0), "user_id": user,
                 "item_id": world.items[0].key}
        publish(prod, [OutboundEvent(topics.CLICKS, user, click)])
        wait(lambda: user in watcher.snapshot().latest, 120, f"a recommendation for {user}")
        record = watcher.snapshot().latest[user]
        assert record["items"] and record["event_ids"] == [f"{user}-click-0"]

        # compose's readiness healthcheck of the worker (/readyz), as Docker runs it
        ready = worker_service["healthcheck"]["test"]
        assert ready[0] == "CMD"
        checked = _run(ready[1:], env, tmp_path, timeout=10, check=False)
        assert checked.returncode == 0, checked.stderr

        # the runtime commands an operator runs beside the worker, from the same install
        cached = json.loads(_run(["llmrec-stream", "recs", user], env, tmp_path).stdout)
        assert cached["items"] == record["items"]
        shown = json.loads(_run(["llmrec-stream", "settings"], env, tmp_path).stdout)
        assert shown["metrics_port"] == port

        # compose's pull API from its own image's install serves that recommendation
        _check_the_serve_image(serve_venv, stack, user, record["items"], tmp_path)
    finally:
        watcher.stop()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
    assert worker.returncode == 0, tail()


def test_the_serve_install_has_the_api_and_no_encoder_runtime(
    serve_venv: Path, tmp_path: Path
) -> None:
    probe = ("import importlib.metadata as m, json; "
             "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-') "
             "for d in m.distributions()})))")
    installed = set(json.loads(_run(["python", "-c", probe], _clean_env(serve_venv),
                                    tmp_path).stdout))
    assert {"llmrec-stream", "fastapi", "uvicorn", "httpx"} <= installed
    assert "onnxruntime" not in installed
    assert sorted(installed & _tooling_distributions()) == []


def _check_the_serve_image(
    venv: Path, stack: DevStack, user: str, items: list[str], tmp_path: Path
) -> None:
    """Compose's ``serve`` as the image runs it: its CMD from the serve stage's install with
    the image's ENV and compose's environment (the stack's addresses, a free loopback port),
    its HEALTHCHECK and compose's readiness probe, then a GET and a POST with the token."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["serve"]
    assert service["command"] == _image_cmd("serve")
    env = {**_clean_env(venv), **_image_env("serve"),
           **{k: _resolve(str(v)) for k, v in service["environment"].items()}}
    env.update(stack.env())
    api_port = free_port()
    env.update({"LLMREC_API_PORT": str(api_port), "LLMREC_API_HOST": "127.0.0.1"})
    token = env["LLMREC_API_TOKEN"]
    assert token  # compose gives one by default
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log:
        api = subprocess.Popen(  # noqa: S603 - the serve image's CMD from its venv
            _image_cmd("serve"), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509
        )
    try:
        health = _healthcheck("serve")
        deadline = time.monotonic() + 60
        while _run(health, env, tmp_path, timeout=10, check=False).returncode != 0:
            assert api.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.5)
        ready = service["healthcheck"]["test"]
        assert ready[0] == "CMD"
        checked = _run(ready[1:], env, tmp_path, timeout=10, check=False)
        assert checked.returncode == 0, checked.stderr

        url = f"http://127.0.0.1:{api_port}"
        auth = {"Authorization": f"Bearer {token}"}
        path = f"{url}/v1/users/{user}/recommendations"
        assert httpx.get(path, timeout=10).status_code == 401
        got = httpx.get(path, headers=auth, timeout=10)
        assert got.status_code == 200, got.text
        assert got.json()["items"] == items
        click = {**envelope(f"{user}-click-1", 0), "user_id": user, "item_id": items[0]}
        posted = httpx.post(f"{url}/v1/events", json={"topic": "clicks", "value": click},
                            headers=auth, timeout=20)
        assert posted.status_code == 202, posted.text
        assert posted.json()["topic"] == topics.CLICKS
    finally:
        api.terminate()
        try:
            api.wait(20)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait(10)
