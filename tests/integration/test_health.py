"""The worker's ops port and logs, against a real worker, broker and Redis.

One worker with ``LLMREC_LOG_FORMAT=json`` on a stack of this module's own (Redis with an
append-only file, so that stopping it for a while, as the fault tier's outage does, loses
nothing): ``/healthz`` answers while the process lives; ``/readyz`` is ready once the pipeline
is built, unready while Redis is down and ready again when it is back; the consumer-lag metric
counts what the stalled worker has not committed; every log line is a JSON object and none
quotes what a user sent.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay
from llmrec_stream.worker import encoder_id
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import replay_world

OUTAGE_S = 12.0
#: Appears only in what this test sends as user input: no log line may contain it.
MARKER = f"PRIVATE-{uuid.uuid4().hex[:10]}"
USER_EVENT_TOPICS = {topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack(workdir=tmp_path_factory.mktemp("health-stack"), redis_persistence=True) as own:
        yield own


world = replay_world(n_items=40, n_users=4, n_events=20, seed=15)


@pytest.fixture(scope="module")
def worker(
    stack: DevStack, encoder_dir: Path, world: SyntheticReplay,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveWorker]:
    live = LiveWorker(stack, encoder_dir, tmp_path_factory.mktemp("health"),
                      env={"LLMREC_LOG_FORMAT": "json"})
    live.start()
    try:
        live.wait(lambda: _get(live, "/healthz")[0] == 200, 120, "/healthz")
        live.publish(world.items)
        live.wait_catalog(len(world.items))
        yield live
    finally:
        assert live.stop() == 0, live.proc.log_tail()


def _get(worker: LiveWorker, path: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of the ops port; (0, {}) while nothing listens."""
    try:
        with urllib.request.urlopen(worker.ops_url + path, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError):
        return 0, {}


def _lag(worker: LiveWorker) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for key, value in worker.metrics().items():
        if key.startswith("llmrec_consumer_lag{"):
            labels = dict(part.split("=", 1) for part in key[len("llmrec_consumer_lag{"):-1]
                          .split(","))
            out[(labels["topic"].strip('"'), labels["partition"].strip('"'))] = value
    return out


def _clicks(world: SyntheticReplay, n: int, tag: str) -> list[OutboundEvent]:
    users = sorted({e.key for e in world.events})
    return [
        OutboundEvent(topics.CLICKS, users[i % len(users)],
                      {**envelope(f"{tag}-{i}", 0), "user_id": users[i % len(users)],
                       "item_id": world.items[i % len(world.items)].key})
        for i in range(n)
    ]


def test_metrics_carry_build_info_process_and_lag_of_every_assigned_partition(
    worker: LiveWorker, encoder_dir: Path
) -> None:
    samples = worker.metrics()
    identity = encoder_id(Settings(encoder_dir=str(encoder_dir)))
    build = [k for k in samples if k.startswith("llmrec_build_info{")]
    assert len(build) == 1 and f'encoder="{identity}"' in build[0], build
    assert samples["process_resident_memory_bytes"] > 10_000_000
    assert samples["process_cpu_seconds_total"] > 0
    # one worker holds every partition of every topic it consumes, once Faust assigned them
    # (the catalog can be complete before: the start-up bootstrap reads llmrec.items itself)
    wanted = {(t, str(p)) for t in USER_EVENT_TOPICS | {topics.ITEMS} for p in range(4)}
    worker.wait(lambda: wanted <= set(_lag(worker)), 60, "lag of every assigned partition")
    lag = _lag(worker)
    for topic in USER_EVENT_TOPICS | {topics.ITEMS}:
        assert {p for t, p in lag if t == topic} == {str(p) for p in range(4)}, sorted(lag)


def test_readyz_follows_redis_and_lag_counts_what_the_stalled_worker_holds(
    worker: LiveWorker, stack: DevStack, world: SyntheticReplay
) -> None:
    worker.wait(lambda: _get(worker, "/readyz")[0] == 200, 60, "/readyz ready")
    status, body = _get(worker, "/readyz")
    assert body == {"status": "ready",
                    "checks": {"pipeline": "ok", "kafka": "ok", "redis": "ok"}}
    worker.wait(lambda: sum(_lag(worker).values()) == 0, 60, "no lag before the outage")

    # The outage runs in this thread: the embedded Redis dies with the thread that started
    # it (its parent-death signal). A watcher thread probes meanwhile, and at the first
    # unready answer publishes events, which the worker then holds uncommitted (backpressure).
    sent = _clicks(world, 30, f"outage-{uuid.uuid4().hex[:6]}")
    seen: list[tuple[int, dict[str, Any], int, float]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            status, body = _get(worker, "/readyz")
            alive = _get(worker, "/healthz")[0]
            held = sum(v for (t, _p), v in _lag(worker).items() if t in USER_EVENT_TOPICS)
            if status == 503 and not any(s[0] == 503 for s in seen):
                worker.publish(sent)
            seen.append((status, body, alive, held))
            done.wait(0.3)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        stack.restart_redis(down_s=OUTAGE_S)
    finally:
        done.set()
        watcher.join()
    unready = [s for s in seen if s[0] == 503]
    assert unready, seen
    for _status, body, _alive, _held in unready:
        assert body["status"] == "not ready" and body["checks"]["redis"] != "ok", body
        assert body["checks"]["pipeline"] == "ok" and body["checks"]["kafka"] == "ok", body
    assert all(alive == 200 for _s, _b, alive, _h in seen), seen
    assert max(held for _s, _b, _a, held in unready) >= len(sent), unready
    worker.wait(lambda: _get(worker, "/readyz")[0] == 200, 60, "/readyz ready again")
    worker.wait(lambda: sum(_lag(worker).values()) == 0, 120, "the lag to drain")
    assert worker.proc.alive


def test_json_logs_parse_and_quote_no_user_input(worker: LiveWorker) -> None:
    before = worker.metrics()
    # a key that is not the event's user id, and a field name the schema refuses: the
    # dead-letter reasons whose details quote the record
    user = f"health-{uuid.uuid4().hex[:6]}"
    click = {**envelope(f"{user}-c", 0), "user_id": user, "item_id": "i-0"}
    attrs = {**envelope(f"{user}-u", 0), "user_id": user, "numeric": {MARKER: "high"}}
    worker.publish_raw(topics.CLICKS, MARKER.encode(), json.dumps(click).encode())
    worker.publish_raw(topics.USERS, user.encode(), json.dumps(attrs).encode())

    def dead_letters(samples: dict[str, float], reason: str) -> float:
        return samples.get(f'llmrec_dead_letters_total{{reason="{reason}"}}', 0.0)

    worker.wait(
        lambda: all(dead_letters(worker.metrics(), r) > dead_letters(before, r)
                    for r in ("key_mismatch", "schema_violation")),
        60, "both dead letters",
    )
    worker.wait(
        lambda: all(f"dead letter {r}" in worker.proc.log_path.read_text()
                    for r in ("key_mismatch", "schema_violation")),
        30, "both dead letters' log lines",
    )
    lines = [ln for ln in worker.proc.log_path.read_text().splitlines() if ln.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line[:300]!r}")
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    letters = [r for r in records if r["message"].startswith("dead letter ")]
    assert any("key_mismatch" in r["message"] for r in letters), letters
    assert any("schema_violation" in r["message"] for r in letters), letters
    quoting = [line for line in lines if MARKER in line]
    assert quoting == []
