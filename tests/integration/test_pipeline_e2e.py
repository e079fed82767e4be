"""The main job end to end: real broker, real Faust worker, real Redis, real ONNX encoder."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from pathlib import Path

import fastjsonschema
import pytest
from click.testing import CliRunner

from llmrec_stream.cli import main
from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.codec import SCHEMAS_DIR
from llmrec_stream.profiles import recs
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay, comment_text_for
from llmrec_stream.waiting import wait_until
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import catalog_worker, own_stack, replay_world
from tests.integration.profile_state import profile_bytes

validate_rec = fastjsonschema.compile(json.loads((SCHEMAS_DIR / "recommendation.json").read_text()))


stack = own_stack()  # other modules' events and Redis flushes stay out
world = replay_world(n_items=160, n_users=30, n_events=600, seed=11)
worker = catalog_worker("worker")


def _click(user: str, item: str, n: int) -> OutboundEvent:
    value = {**envelope(f"{user}-click-{n}", 0), "user_id": user, "item_id": item}
    return OutboundEvent(topics.CLICKS, user, value)


def _comment(user: str, text: str, n: int) -> OutboundEvent:
    value = {**envelope(f"{user}-comment-{n}", 0), "user_id": user, "text": text}
    return OutboundEvent(topics.COMMENTS, user, value)


def test_every_touched_user_gets_a_record(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay
) -> None:
    users = [f"e2e-a-{i}" for i in range(5)]
    items = [e.key for e in world.items]
    events = [
        _click(u, items[(7 * i + j) % len(items)], j) for i, u in enumerate(users) for j in range(3)
    ]
    sent = time.time()
    worker.publish(events)
    wait_until(lambda: set(users) <= set(watcher.snapshot().latest), 30, "a record per user")
    observed = watcher.snapshot()
    for user in users:
        rec = observed.latest[user]
        validate_rec(rec)
        assert len(rec["items"]) == 20 and rec["scores"] == sorted(rec["scores"], reverse=True)
        assert set(rec["event_ids"]) <= {e.value["event_id"] for e in events}
        assert rec["trigger_ts"] >= int(sent * 1000) - 1000
        assert rec["model_version"].startswith("fused")
    # freshness as a client sees it: well under the demo's bound even on a loaded 2-core box
    assert max(observed.freshness_s) < 10.0


def test_comment_about_a_category_ranks_that_category_first(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay
) -> None:
    rng = random.Random(3)
    for n, category in enumerate(world.categories[:4]):
        user = f"e2e-writer-{n}"
        worker.publish([_comment(user, comment_text_for(category, rng), j) for j in range(2)])

        def has_recs(u: str = user) -> bool:
            return u in watcher.snapshot().latest

        wait_until(has_recs, 30, f"recs for {user}")
        top = watcher.snapshot().latest[user]["items"][:10]
        in_category = sum(world.item_category[i] == category for i in top)
        assert in_category >= 8, (category, [world.item_category[i] for i in top])


def test_malformed_events_go_to_the_dlq_and_the_stream_goes_on(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay
) -> None:
    item = world.items[0].key
    worker.publish([_click("e2e-dlq-before", item, 0)])
    worker.publish_raw(topics.CLICKS, b"e2e-dlq-bad", b"{not json")
    worker.publish_raw(
        topics.PURCHASES,
        b"e2e-dlq-bad",
        json.dumps(
            {
                **envelope("bad-1", int(time.time() * 1000)),
                "user_id": "e2e-dlq-bad",
                "item_id": item,
                "amount": -5,
                "quantity": 1,
            }
        ).encode(),
    )
    worker.publish([_click("e2e-dlq-after", item, 0), _click("e2e-dlq-unknown", "no-such", 0)])
    wait_until(lambda: sum(watcher.snapshot().dead_letters.values()) >= 3, 30, "dead letters")
    wait_until(
        lambda: {"e2e-dlq-before", "e2e-dlq-after"} <= set(watcher.snapshot().latest),
        30,
        "valid events around the bad ones",
    )
    assert watcher.snapshot().dead_letters == {
        "invalid_json": 1,
        "schema_violation": 1,
        "unknown_item": 1,
    }


def test_worker_metrics_tell_what_happened(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay
) -> None:
    before = worker.metrics()
    worker.publish([_comment("e2e-metrics", "I love my new trail running shoes", 0)])
    worker.publish_raw(topics.COMMENTS, b"e2e-metrics", b"[1, 2]")
    wait_until(lambda: "e2e-metrics" in watcher.snapshot().latest, 30, "recs")
    wait_until(
        lambda: (
            worker.metrics().get('llmrec_dead_letters_total{reason="not_an_object"}', 0)
            > before.get('llmrec_dead_letters_total{reason="not_an_object"}', 0)
        ),
        10,
        "the dead letter to be counted",
    )
    after = worker.metrics()

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta('llmrec_events_consumed_total{topic="llmrec.comments"}') == 2
    assert delta("llmrec_recommendations_published_total") >= 1
    assert delta("llmrec_freshness_seconds_count") >= 1
    assert delta("llmrec_encoder_batch_texts_count") >= 1
    assert delta("llmrec_profile_update_duration_seconds_count") >= 1
    assert after["llmrec_catalog_items"] == len(world.items)
    assert any(k.startswith("llmrec_model_info{") for k in after)


def test_recommendations_are_cached_for_pull(worker: LiveWorker, world: SyntheticReplay) -> None:
    worker.publish([_click("e2e-pull", world.items[1].key, 0)])
    key = "u:{e2e-pull}:recs"
    wait_until(lambda: worker.redis.exists(key), 30, "cached recommendations")
    cached = recs.decode("e2e-pull", worker.redis.get(key))
    assert cached["user_id"] == "e2e-pull" and len(cached["items"]) >= 1
    env = {"LLMREC_REDIS_URL": worker.stack.redis_url}
    result = CliRunner().invoke(main, ["recs", "e2e-pull"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["items"] == cached["items"]
    missing = CliRunner().invoke(main, ["recs", "nobody"], env=env)
    assert missing.exit_code != 0 and "no recommendations" in missing.output


def test_erasure_removes_the_user_everywhere_within_5s(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay
) -> None:
    user = ERASED
    worker.publish(
        [
            _click(user, world.items[2].key, 0),
            _comment(user, "great kettle", 1),
            _click(user, world.items[3].key, 2),
        ]
    )
    wait_until(lambda: worker.redis.exists(f"u:{{{user}}}:recs"), 30, "the user's profile")
    env = {"LLMREC_KAFKA_BOOTSTRAP": worker.stack.kafka_bootstrap}
    asked = time.monotonic()
    result = CliRunner().invoke(main, ["erase", user], env=env)
    assert result.exit_code == 0, result.output
    # what stays is the erasure marker (erased-at, offset watermarks, encoder id): it keeps a
    # batch in flight or a replay from bringing the user back
    marker = f"u:{{{user}}}:p".encode()

    def erased() -> bool:
        keys = list(worker.redis.scan_iter(match=f"*{user}*"))
        return keys == [marker] and worker.redis.hexists(marker, "x")

    wait_until(erased, 5, "erasure")
    wait_until(lambda: user in watcher.snapshot().tombstones, 5, "the tombstone")
    assert time.monotonic() - asked < 5.0
    fields = worker.redis.hgetall(marker)
    assert all(f == b"x" or f == b"enc" or f.startswith((b"wm:", b"xo:")) for f in fields), fields
    # nothing else of the user is left in any key or value
    for key in worker.redis.scan_iter():
        if key == marker:
            continue
        assert user.encode() not in key
        if worker.redis.type(key) == b"string":
            assert user.encode() not in worker.redis.get(key)


def test_comment_text_never_reaches_logs_metrics_or_redis(
    worker: LiveWorker, watcher: OutputWatcher
) -> None:
    canary = "zqxcanary7731 my very private words"
    user = "e2e-canary"
    worker.publish([_comment(user, f"I loved the espresso beans {canary}", 0)])
    wait_until(lambda: user in watcher.snapshot().latest, 30, "recs for the canary comment")
    token = b"zqxcanary7731"
    assert token not in worker.proc.log_path.read_bytes()
    assert token.decode() not in urllib.request.urlopen(worker.metrics_url).read().decode()  # noqa: S310
    r = worker.redis
    for key in r.scan_iter():
        assert token not in key
        kind = r.type(key)
        if kind == b"string":
            values = [r.get(key)]
        elif kind == b"hash":
            values = list(r.hgetall(key).values())
        elif kind == b"list":
            values = r.lrange(key, 0, -1)
        elif kind == b"zset":
            values = r.zrange(key, 0, -1)
        else:  # the catalog change log: item ids only
            values = [repr(r.xrange(key)).encode()]
        assert not any(token in v for v in values if v), key


ERASED = "e2e-erase-me"


def _profile_state(worker: LiveWorker) -> dict[bytes, object]:
    """Every profile key's exact bytes (`profile_bytes`) but the erased user's.

    An erased user's events are still in the log: a replay from offset 0 re-applies them
    until it reaches the erasure again (a documented limit: the platform's retention has to
    forget the raw events). Every other user must come out byte-identical.
    """
    return profile_bytes(worker.redis, leave_out=ERASED)


def test_replaying_everything_again_leaves_profiles_byte_identical(
    worker: LiveWorker,
    world: SyntheticReplay,
    stack: DevStack,
    encoder_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    worker.publish(world.users + world.events[:300])
    worker.wait_caught_up()
    before = _profile_state(worker)
    assert len(before) > 30
    # a second consumer group reads every topic from offset 0: every event is delivered again
    replayer = LiveWorker(stack, encoder_dir, tmp_path_factory.mktemp("replay")).start()
    try:
        replayer.wait_caught_up(timeout=180)
    finally:
        assert replayer.stop() == 0, replayer.proc.log_tail()
    after = _profile_state(worker)
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, changed[:5]
    assert after == before


def test_a_worker_that_cannot_build_its_pipeline_exits_with_the_reason(
    stack: DevStack, tmp_path: Path
) -> None:
    from llmrec_stream.devstack.worker import WorkerProcess

    env = {**stack.env(), "LLMREC_ENCODER_DIR": str(tmp_path / "no-encoder-here"),
           "LLMREC_APP_ID": "broken-config"}
    broken = WorkerProcess(env, tmp_path / "broken.log", worker_id="broken-0")
    broken.start()
    assert broken.proc is not None
    assert broken.proc.wait(60) == 78  # EX_CONFIG, not an idle member with crashed agents
    assert "no exported encoder" in broken.log_tail()
    broken.stop()
