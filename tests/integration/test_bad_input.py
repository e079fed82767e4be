"""10 % bad events of every kind mixed into valid traffic: all dead-lettered with their reason,
the worker never crashes, valid events are unaffected, and the metric matches the topic."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

from confluent_kafka import Producer

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.replay import Delivered, publish
from llmrec_stream.sources.synthetic import SyntheticReplay, synthetic_replay
from llmrec_stream.verify import compare, expected_profiles
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import bare_worker, own_stack

NOW = int(time.time() * 1000)


def _bad_records(world: SyntheticReplay, rng: random.Random) -> list[tuple[str, bytes, bytes, str]]:
    """(topic, key, value, expected reason) for every kind of bad input the issue lists."""
    user = "bad-user"
    item = world.items[0].key
    base = {"schema_version": 1, "event_id": "bad", "ts": NOW, "user_id": user}
    click = {**base, "item_id": item}
    comment = {**base, "text": "fine"}
    purchase = {**click, "amount": 5.0, "quantity": 1}

    def j(obj: dict[str, object]) -> bytes:
        return json.dumps(obj).encode()

    kinds = [
        (topics.CLICKS, j(click)[:-3], "invalid_json"),
        (topics.CLICKS, j({k: v for k, v in click.items() if k != "item_id"}), "schema_violation"),
        (topics.PURCHASES, j({**purchase, "quantity": "two"}), "schema_violation"),
        (topics.PURCHASES, j({**purchase, "amount": -3.0}), "schema_violation"),
        (topics.PURCHASES, j({**purchase, "amount": 1e12}), "schema_violation"),
        (topics.COMMENTS, j({**comment, "text": "x" * 9000}), "text_too_large"),
        (topics.CLICKS, j({**click, "schema_version": 9}), "unknown_schema_version"),
        (topics.CLICKS, j({**click, "item_id": "no-such-item"}), "unknown_item"),
        (topics.CLICKS, j({**click, "ts": NOW + 86_400_000}), "future_timestamp"),
        (topics.COMMENTS, j({**comment, "text": "   "}), "empty_text"),
        (topics.COMMENTS, j({**comment, "text": "bell\x07 and nul\x00"}), "control_characters"),
        (topics.COMMENTS, b'{"text": "\xff\xfe"}', "invalid_utf8"),
        (topics.USERS, j({**base, "gender": 3}), "schema_violation"),
    ]
    out = [(t, user.encode(), v, r) for t, v, r in kinds]
    out.append((topics.CLICKS, b"", j(click), "key_mismatch"))  # missing key
    out.append((topics.CLICKS, b"someone-else", j(click), "key_mismatch"))
    out = [out[i % len(out)] for i in range(40)]
    rng.shuffle(out)
    return out


stack = own_stack()  # other modules' events and Redis flushes stay out
worker = bare_worker("bad")


def test_bad_events_are_dead_lettered_and_valid_ones_unaffected(
    worker: LiveWorker,
    stack: DevStack,
    text_encoder,  # type: ignore[no-untyped-def]
) -> None:
    world = synthetic_replay(n_items=40, n_users=30, n_events=360, seed=23)
    delivered: list[Delivered] = []
    publish(worker.producer, world.items, delivered=delivered)
    worker.wait_catalog(len(world.items))
    watcher = OutputWatcher(stack.kafka_bootstrap)
    watcher.start(stack.partitions)
    time.sleep(0.5)
    before = worker.metrics()
    bad = _bad_records(world, random.Random(1))
    raw = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    valid = world.users + world.events
    step = len(valid) // len(bad)
    for n, (topic, key, value, _) in enumerate(bad):  # ~10 % bad, interleaved
        publish(worker.producer, valid[n * step : (n + 1) * step], delivered=delivered)
        raw.produce(topic, value, key)
        raw.flush(10)
    publish(worker.producer, valid[len(bad) * step :], delivered=delivered)
    worker.wait_caught_up()
    want = Counter(reason for *_, reason in bad)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and watcher.snapshot().dead_letters != want:
        time.sleep(0.2)
    watcher.stop()
    assert watcher.snapshot().dead_letters == want
    after = worker.metrics()
    metric = {
        k.split('reason="')[1].rstrip('"}'): after[k] - before.get(k, 0.0)
        for k in after
        if k.startswith("llmrec_dead_letters_total{")
    }
    assert {r: int(n) for r, n in metric.items() if n} == dict(want)
    assert worker.proc.alive
    expected, rejected = expected_profiles(delivered, {e.key for e in world.items})
    assert not rejected
    report = compare(worker.redis, expected, FusionWeights(), encoder=text_encoder)
    assert report.ok, report.mismatches[:5]
