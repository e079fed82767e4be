"""The pull API and the Python client against the real stack: a uvicorn server process, the
module's broker and Redis, a live worker. An event POSTed to the API drives the
recommendation a GET then returns; the docs' client example runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from llmrec_stream.client import (
    EventProducer,
    HttpRecommendations,
    InvalidEvent,
    RedisRecommendations,
    new_event,
)
from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.process import _die_with_parent_hook, free_port
from llmrec_stream.events import topics
from llmrec_stream.sources.synthetic import SyntheticReplay
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import catalog_worker, own_stack, replay_world

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"  # noqa: S105 - the test server's own token
CLICKS_SCHEMA_ID = 7


stack = own_stack()
world = replay_world(n_items=60, n_users=10, n_events=100, seed=5)
worker = catalog_worker("worker")


@contextmanager
def serving(env: Mapping[str, str], logdir: Path) -> Iterator[str]:
    """``llmrec-stream serve`` as its own process in ``env``; yields its base URL once the
    process answers HTTP."""
    port = free_port()
    log = (logdir / "api.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "llmrec_stream", "serve", "--port", str(port)],
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - only sets the death signal
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, Path(log.name).read_text()
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.fixture(scope="module")
def api(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API on the module's stack, with a token; yields its base URL."""
    env = {
        **os.environ,
        **stack.env(),
        "LLMREC_API_TOKEN": TOKEN,
        "LLMREC_SCHEMA_IDS": json.dumps({topics.CLICKS: CLICKS_SCHEMA_ID}),
    }
    with serving(env, tmp_path_factory.mktemp("api")) as url:
        yield url


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_openapi_document_lists_both_calls_and_the_bearer_scheme(api: str) -> None:
    doc = httpx.get(f"{api}/openapi.json").json()
    assert {"/v1/events", "/v1/users/{user_id}/recommendations"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_health_endpoints_answer_without_a_token(api: str) -> None:
    assert httpx.get(f"{api}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{api}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"redis": "ok", "kafka": "ok"}}


def test_the_api_is_alive_but_not_ready_without_redis(
    stack: DevStack, tmp_path: Path
) -> None:
    env = {**os.environ, **stack.env(), "LLMREC_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "LLMREC_HEALTH_CHECK_TIMEOUT_S": "2"}
    with serving(env, tmp_path) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "not ready" and body["checks"]["kafka"] == "ok"
        assert body["checks"]["redis"] not in ("ok", "")
        assert "127.0.0.1" not in ready.text  # named by class, no address


def test_calls_without_the_token_are_refused(api: str) -> None:
    path = f"{api}/v1/users/nobody/recommendations"
    assert httpx.get(path).status_code == 401
    wrong = httpx.get(path, headers=_auth("not-it"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.post(f"{api}/v1/events", json={"topic": "clicks", "value": {}}).status_code == 401
    assert httpx.get(path, headers=_auth()).status_code == 404


def test_invalid_events_get_the_reason_the_workers_would_give(api: str) -> None:
    bad_click = new_event(user_id="u-bad", item_id=5)
    resp = httpx.post(
        f"{api}/v1/events", json={"topic": "clicks", "value": bad_click}, headers=_auth()
    )
    assert resp.status_code == 422 and resp.json()["detail"]["reason"] == "schema_violation"
    empty = new_event(user_id="u-bad", text="  ")
    resp = httpx.post(
        f"{api}/v1/events", json={"topic": "comments", "value": empty}, headers=_auth()
    )
    assert resp.status_code == 422 and resp.json()["detail"]["reason"] == "empty_text"
    resp = httpx.post(
        f"{api}/v1/events", json={"topic": "nope", "value": bad_click}, headers=_auth()
    )
    assert resp.status_code == 422 and "no event topic" in resp.json()["detail"]


def test_a_posted_event_drives_the_recommendation_a_get_returns(
    api: str, worker: LiveWorker, world: SyntheticReplay, stack: DevStack
) -> None:
    item = world.items[3].key
    click = new_event(user_id="api-user-1", item_id=item)
    resp = httpx.post(f"{api}/v1/events", json={"topic": "clicks", "value": click}, headers=_auth())
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["topic"] == topics.CLICKS and accepted["key"] == "api-user-1"
    assert accepted["offset"] >= 0
    # LLMREC_SCHEMA_IDS names clicks: the record went out framed, and the worker took it
    assert accepted["schema_id"] == CLICKS_SCHEMA_ID
    deadline = time.monotonic() + 60
    while True:
        got = httpx.get(f"{api}/v1/users/api-user-1/recommendations", headers=_auth())
        if got.status_code == 200:
            break
        assert got.status_code == 404 and time.monotonic() < deadline, got.text
        time.sleep(0.2)
    body = got.json()
    assert body["user_id"] == "api-user-1"
    assert body["trigger_ts"] == click["ts"]  # this very event drove it
    assert len(body["items"]) == len(body["scores"]) > 0
    assert body["model_version"]
    assert 0 <= body["age_s"] < 60
    # the same record through the SDK's readers
    over_http = HttpRecommendations(api, token=TOKEN).get("api-user-1")
    from_redis = RedisRecommendations(stack.redis_url).get("api-user-1")
    assert over_http is not None and from_redis is not None
    assert over_http.items == from_redis.items == body["items"]
    assert over_http.model_version == body["model_version"]


def test_the_producer_refuses_invalid_events_before_the_broker(stack: DevStack) -> None:
    with EventProducer(stack.kafka_bootstrap) as events:
        with pytest.raises(InvalidEvent) as bad:
            events.comment("u-x", "bad \x07 bell")
        assert bad.value.reason == "control_characters"
        with pytest.raises(InvalidEvent) as future:
            events.click("u-x", "i-1", ts=int(time.time() * 1000) + 3_600_000)
        assert future.value.reason == "future_timestamp"
        sent = events.purchase("u-x", "i-1", amount=9.5)
        assert sent.topic == topics.PURCHASES and sent.schema_id is None and sent.offset >= 0


def test_a_bad_magic_byte_is_dead_lettered_by_the_live_worker(
    worker: LiveWorker, stack: DevStack
) -> None:
    watcher = OutputWatcher(stack.kafka_bootstrap)
    watcher.start(stack.partitions)
    try:
        time.sleep(0.5)
        value = b"\x01\x00\x00\x00\x07" + json.dumps(new_event(user_id="u-m", item_id="i")).encode()
        worker.publish_raw(topics.CLICKS, b"u-m", value)
        worker.wait(
            lambda: watcher.snapshot().dead_letters.get("bad_magic_byte", 0) == 1,
            30,
            "the bad_magic_byte dead letter",
        )
    finally:
        watcher.stop()


def test_the_docs_example_runs(
    api: str, worker: LiveWorker, world: SyntheticReplay, stack: DevStack
) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    env = {
        **os.environ,
        "LLMREC_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LLMREC_API_URL": api,
        "LLMREC_API_TOKEN": TOKEN,
        "EXAMPLE_USER": "docs-user",
        "EXAMPLE_ITEM": world.items[0].key,
    }
    out = subprocess.run(  # noqa: S603 - our interpreter, the docs' own code
        [sys.executable, "-c", blocks[0]], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "refused: empty_text"
    assert lines[1].startswith(f"click stored at {topics.CLICKS}[")
    assert re.match(r"\d+ items from \S+, \d+\.\d s old:", lines[2]), lines


pytestmark = pytest.mark.timeout(300)
