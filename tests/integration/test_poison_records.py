"""Poison records: values as large as the broker or a default producer accepts, and not JSON,
on every event topic and on the catalog. Each becomes one dead letter that fits (coordinates,
sha256, length, a bounded prefix, marked truncated), the worker stays up, and a good record
after it on the same partition is still processed.

Before dead letters were bounded, the first such record killed the worker for good: its dead
letter carried the whole value in base64, over the producer's max request size, the worker
exited, restarted, read the same record and exited again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from jsonschema import Draft7Validator

from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.kafka_log import read_records
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import bare_worker, own_stack

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "dead_letter.json").read_text())
#: Faust's producer_max_request_size and librdkafka's message.max.bytes, both by default
PRODUCER_LIMIT = 1_000_000
#: record batch framing and the record's own header, beside key and value (measured: a value
#: this much under the topic's max.message.bytes is accepted, a few bytes more is not)
BATCH_OVERHEAD = 100
NOW = int(time.time() * 1000)
TOPICS = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS, topics.ITEMS]


stack = own_stack()  # its dead letters are the only ones on llmrec.dlq
worker = bare_worker("poison")


def _broker_limit(stack: DevStack, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res])[res].result(timeout=10)
    return int(entries["max.message.bytes"].value)


def _poison(size: int, seed: bytes) -> bytes:
    """``size`` bytes that are not JSON (nor UTF-8), different for every record."""
    block = hashlib.sha256(seed).digest() + b"\xff\x00{"
    return (block * (size // len(block) + 1))[:size]


def _produce(raw: Producer, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
    """Produce one record and wait for the broker to take it: its (partition, offset)."""
    reports: list[tuple[object, int, int]] = []
    raw.produce(topic, value, key,
                on_delivery=lambda err, m: reports.append((err, m.partition(), m.offset())))
    raw.flush(30)
    assert len(reports) == 1 and reports[0][0] is None, (topic, len(value), reports)
    return reports[0][1], reports[0][2]


def _good(topic: str, key: str, item: str, n: int) -> OutboundEvent:
    base = {"schema_version": 1, "event_id": f"good-{n}", "ts": NOW + n}
    if topic == topics.ITEMS:
        return OutboundEvent(topic, key, {**base, "item_id": key, "title": f"good item {n}"})
    user = {**base, "user_id": key}
    value: dict[str, object] = {
        topics.COMMENTS: {**user, "text": "a fine product after all", "item_id": item},
        topics.CLICKS: {**user, "item_id": item},
        topics.PURCHASES: {**user, "item_id": item, "amount": 9.5, "quantity": 1},
        topics.USERS: {**user, "age_band": "25-34", "spend_level": "mid"},
    }[topic]
    return OutboundEvent(topic, key, value)  # type: ignore[arg-type]


def test_poison_records_at_the_size_limits_become_dead_letters_that_fit(
    worker: LiveWorker, stack: DevStack
) -> None:
    items = [
        OutboundEvent(topics.ITEMS, f"it-{i}", {"schema_version": 1, "event_id": f"it-{i}",
                      "ts": NOW, "item_id": f"it-{i}", "title": f"item number {i}"})
        for i in range(5)
    ]  # fmt: skip
    worker.publish(items)
    worker.wait_catalog(len(items))
    pid = worker.proc.proc.pid  # type: ignore[union-attr]

    raw = Producer({"bootstrap.servers": stack.kafka_bootstrap, "linger.ms": 0,
                    "message.max.bytes": 2 * PRODUCER_LIMIT})  # fmt: skip
    sent: dict[tuple[str, int, int], tuple[bytes, bytes]] = {}  # coordinates -> key, value
    good: list[tuple[OutboundEvent, int]] = []  # a good record after each poison, its offset
    n = 0
    for topic in TOPICS:
        broker_limit = _broker_limit(stack, topic)
        for size_limit in (PRODUCER_LIMIT, broker_limit):
            key = f"poison-{topic}-{size_limit}".encode()
            size = size_limit - BATCH_OVERHEAD - len(key)
            value = _poison(size, key)
            partition, offset = _produce(raw, topic, key, value)
            sent[(topic, partition, offset)] = (key, value)
            # then a good record on the same partition (same key), after the poison
            event = _good(topic, key.decode(), "it-1", n)
            n += 1
            good_partition, good_offset = _produce(raw, topic, *event.encode())
            assert good_partition == partition
            good.append((event, good_offset))

    # every good record processed: the user's watermark for that partition, the item's vector
    def processed() -> bool:
        for event, offset in good:
            if event.topic == topics.ITEMS:
                if not worker.redis.hexists(VECTORS, event.key):
                    return False
                continue
            partition = next(p for (t, p, _), (k, _) in sent.items()
                             if t == event.topic and k == event.key.encode())  # fmt: skip
            wm = worker.redis.hget(f"u:{{{event.key}}}:p", f"wm:{event.topic}:{partition}")
            if wm is None or int(wm) < offset:
                return False
        return True

    worker.wait(processed, 180, "the good records after the poison ones")
    assert worker.proc.alive and worker.proc.proc.pid == pid, "the worker restarted"  # type: ignore[union-attr]

    # one dead letter per poison record, with its coordinates, digest and a bounded prefix
    def dead_letters() -> list[tuple[bytes | None, bytes]]:
        return [(r.key, r.value or b"") for r in read_records(stack.kafka_bootstrap, [topics.DLQ])]

    worker.wait(lambda: len(dead_letters()) >= len(sent), 30, "the dead letters")
    time.sleep(1.0)  # a second copy of any would show up now
    letters = dead_letters()
    assert len(letters) == len(sent)
    validator = Draft7Validator(SCHEMA)
    seen = set()
    for dlq_key, body in letters:
        assert len(body) + len(dlq_key or b"") < 64 * 1024  # far inside any request limit
        record = json.loads(body)
        assert not list(validator.iter_errors(record))
        where = (record["source_topic"], record["source_partition"], record["source_offset"])
        key, value = sent[where]
        seen.add(where)
        assert record["schema_version"] == 2
        # a first byte that is a control character cannot start JSON nor Confluent's frame
        assert record["reason"] in {"invalid_utf8", "invalid_json", "bad_magic_byte"}
        assert record["value_sha256"] == hashlib.sha256(value).hexdigest()
        assert record["value_length"] == len(value)
        assert record["key_sha256"] == hashlib.sha256(key).hexdigest()
        prefix = base64.b64decode(record["value"])
        assert 0 < len(prefix) <= 4096 and value.startswith(prefix)
        assert record["truncated"] is True
    assert seen == set(sent)
    # the metric agrees and no dead letter failed to be written
    metrics = worker.metrics()
    letters = [v for k, v in metrics.items() if k.startswith("llmrec_dead_letters_total{")]
    assert sum(letters) == len(sent)
    assert not any(v for k, v in metrics.items() if k.startswith("llmrec_dead_letter_failures"))
    # comments, clicks and purchases after the poison drove recommendations
    log = read_records(stack.kafka_bootstrap, [topics.RECOMMENDATIONS])
    recs = [json.loads(r.value) for r in log if r.value]
    driven = {(r["user_id"], e) for r in recs for e in r["event_ids"]}
    for event, _ in good:
        if event.topic in (topics.COMMENTS, topics.CLICKS, topics.PURCHASES):
            assert (event.key, event.value["event_id"]) in driven, event


def test_a_dead_letter_the_dlq_refuses_is_retried_in_its_minimal_form(
    worker: LiveWorker, stack: DevStack
) -> None:
    """``llmrec.dlq`` takes at most 1,500 bytes a record: the full letter (a 4 KB prefix) is
    refused, the retry sends coordinates and digests only, and the stream goes on."""
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})

    def dlq_limit(value: int) -> None:
        entry = ConfigEntry("max.message.bytes", str(value),
                            incremental_operation=AlterConfigOpType.SET)  # fmt: skip
        res = ConfigResource(ResourceType.TOPIC, topics.DLQ, incremental_configs=[entry])
        for future in admin.incremental_alter_configs([res]).values():
            future.result(timeout=10)

    before = worker.metrics().get("llmrec_dead_letter_retries_total", 0.0)
    original = _broker_limit(stack, topics.DLQ)
    dlq_limit(1500)
    try:
        raw = Producer({"bootstrap.servers": stack.kafka_bootstrap, "linger.ms": 0})
        value = _poison(200_000, b"refused")
        partition, offset = _produce(raw, topics.CLICKS, b"poison-refused", value)
        event = _good(topics.CLICKS, "poison-refused", "it-2", 99)
        _, good_offset = _produce(raw, topics.CLICKS, *event.encode())
        wm_key, wm_field = "u:{poison-refused}:p", f"wm:{topics.CLICKS}:{partition}"
        worker.wait(lambda: int(worker.redis.hget(wm_key, wm_field) or -1) >= good_offset, 60,
                    "the click after the poison record")  # fmt: skip
        # the letter is written beside the batch (its commit waits for it): the retry lands
        # after its backoff, while the DLQ still refuses the full form
        worker.wait(lambda: bool(_letters_for(stack, partition, offset)), 60,
                    "the minimal dead letter")  # fmt: skip
    finally:
        dlq_limit(original)
    letters = _letters_for(stack, partition, offset)
    assert len(letters) == 1
    letter = letters[0]
    assert letter["source_partition"] == partition
    assert letter["value"] == "" and letter["truncated"] is True
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert letter["value_length"] == len(value)
    assert worker.metrics()["llmrec_dead_letter_retries_total"] - before >= 1
    assert worker.proc.alive


def _letters_for(stack: DevStack, partition: int, offset: int) -> list[dict[str, Any]]:
    """Dead letters of the clicks record at (partition, offset), from offset 0 of the DLQ."""
    return [
        letter
        for r in read_records(stack.kafka_bootstrap, [topics.DLQ])
        if r.value
        and (letter := json.loads(r.value))["source_offset"] == offset
        and letter["source_topic"] == topics.CLICKS
        and letter["source_partition"] == partition
    ]
