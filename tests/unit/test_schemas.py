"""The event contracts in ``schemas/``: valid draft-07, honoured by our producers, frozen.

Two kinds of test live here. The first checks what we write (synthetic events, recommendation
records, dead letters) against the schemas with an independent validator (jsonschema; the
codec itself uses fastjsonschema). The second freezes v1: literal payloads as an old producer
wrote them must still decode, and the required fields are spelled out, so removing or renaming
a field of a published schema fails here rather than in a consumer in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from llmrec_stream.dlq import DeadLetterFormat, check_prefix, dead_letter, max_value_prefix
from llmrec_stream.events import codec, models, topics
from llmrec_stream.events.models import Envelope, Event, Source
from llmrec_stream.publish import recommendation_record
from llmrec_stream.sources.base import OutboundEvent
from llmrec_stream.sources.synthetic import synthetic_replay

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
SCHEMA_FILES = sorted(SCHEMAS.glob("*.json"))
SRC = Source("llmrec.test", 3, 42)


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))


def validator(name: str) -> Draft7Validator:
    return Draft7Validator(load(name))


def assert_valid(name: str, obj: Any) -> None:
    errors = sorted(validator(name).iter_errors(obj), key=str)
    assert not errors, [e.message for e in errors]


# --- the schema files themselves ---------------------------------------------------------------


def test_the_schema_folder_holds_every_contract() -> None:
    assert {p.stem for p in SCHEMA_FILES} == {
        "click",
        "comment",
        "dead_letter",
        "erase",
        "follow",
        "item",
        "model_update",
        "purchase",
        "recommendation",
        "sponsored",
        "user",
    }


def test_the_codec_reads_the_same_schemas() -> None:
    # The package ships schemas through a link; both paths must name the same files.
    assert codec.SCHEMAS_DIR.resolve() == SCHEMAS.resolve()
    for schema_name, _ in codec.TOPIC_SCHEMAS.values():
        assert (SCHEMAS / f"{schema_name}.json").is_file()


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_schema_is_valid_draft07_with_a_version(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"].endswith(f"/{path.name}")
    assert schema["type"] == "object"
    version = schema["properties"]["schema_version"]
    assert version["type"] == "integer"
    # dead letters went to v2 (bounded prefixes and digests), recommendations to v2 (reasons,
    # sponsored placements); v1 records still validate
    v2 = ("dead_letter", "recommendation")
    assert version["enum"] == ([1, 2] if path.stem in v2 else [1])
    assert "schema_version" in schema["required"]


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_required_fields_are_declared_properties(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert set(schema["required"]) <= set(schema["properties"])
    assert len(schema["required"]) == len(set(schema["required"]))


# --- frozen v1: required fields and declared properties, literally ---------------------------

FROZEN_REQUIRED: dict[str, list[str]] = {
    "click": ["schema_version", "event_id", "ts", "user_id", "item_id"],
    "comment": ["schema_version", "event_id", "ts", "user_id", "text"],
    "purchase": ["schema_version", "event_id", "ts", "user_id", "item_id", "amount", "quantity"],
    "user": ["schema_version", "event_id", "ts", "user_id"],
    "item": ["schema_version", "event_id", "ts", "item_id", "title"],
    "recommendation": [
        "schema_version",
        "user_id",
        "items",
        "scores",
        "model_version",
        "event_ids",
        "trigger_ts",
        "published_ts",
    ],
    "dead_letter": [
        "schema_version",
        "reason",
        "detail",
        "source_topic",
        "source_partition",
        "source_offset",
        "exception",
        "ts",
    ],
    "model_update": ["schema_version", "version", "sha256", "location", "metrics", "created_ts"],
    "erase": ["schema_version", "event_id", "ts", "user_id"],
    "sponsored": ["schema_version", "event_id", "ts", "campaign_id", "item_id", "bid", "budget",
                  "start_ts", "end_ts"],
    "follow": ["schema_version", "event_id", "ts", "user_id", "followee_id", "action"],
}

#: The declared fields beyond the required ones (adding one is a compatible change).
FROZEN_OPTIONAL: dict[str, set[str]] = {
    "follow": set(),
    "erase": set(),
    "sponsored": {"categories", "query"},
    "click": set(),
    "comment": {"item_id", "rating"},
    "purchase": set(),
    "user": {"age_band", "gender", "spend_level", "numeric"},
    "item": {"description", "tags", "category"},
    "recommendation": {"reasons", "placements", "aspects"},
    "dead_letter": {"key", "key_sha256", "key_length", "value", "value_sha256", "value_length",
                    "truncated", "worker_id"},
    "model_update": {"force", "shadow"},  # shadow: issue 14, run in shadow before promotion
}
FROZEN_PROPERTIES: dict[str, set[str]] = {
    name: set(required) | FROZEN_OPTIONAL[name] for name, required in FROZEN_REQUIRED.items()
}


def test_frozen_tables_cover_every_schema() -> None:
    names = {p.stem for p in SCHEMA_FILES}
    assert set(FROZEN_REQUIRED) == names
    assert set(FROZEN_PROPERTIES) == names


@pytest.mark.parametrize("name", sorted(FROZEN_REQUIRED))
def test_required_fields_are_frozen(name: str) -> None:
    assert load(name)["required"] == FROZEN_REQUIRED[name]


@pytest.mark.parametrize("name", sorted(FROZEN_PROPERTIES))
def test_declared_fields_are_frozen(name: str) -> None:
    # Adding a property is a compatible change (update this table); removing or renaming is not.
    assert set(load(name)["properties"]) == FROZEN_PROPERTIES[name]


def test_event_schemas_accept_fields_from_newer_producers() -> None:
    # Forward compatibility: v1 consumers must not reject a v1 event that grew a field.
    for name in ("click", "comment", "purchase", "user", "item"):
        assert load(name)["additionalProperties"] is True
    for name in ("recommendation", "dead_letter", "model_update"):
        assert load(name)["additionalProperties"] is False


#: The dead-letter reasons of schema v1, in the schema's order (test_codec checks against them).
DEAD_LETTER_REASONS = [
    "invalid_json",
    "invalid_utf8",
    "not_an_object",
    "schema_violation",
    "unknown_schema_version",
    "key_mismatch",
    "text_too_large",
    "empty_text",
    "control_characters",
    "future_timestamp",
    "unknown_item",
    "encoding_failed",
    "bad_magic_byte",
]


def test_dead_letter_reasons_are_frozen() -> None:
    assert load("dead_letter")["properties"]["reason"]["enum"] == DEAD_LETTER_REASONS


def test_user_attribute_enums_are_frozen() -> None:
    props = load("user")["properties"]
    assert props["age_band"]["enum"] == ["18-24", "25-34", "35-44", "45-54", "55+", "unknown"]
    assert props["gender"]["enum"] == ["f", "m", "x", "unknown"]
    assert props["spend_level"]["enum"] == ["low", "mid", "high", "unknown"]


# --- frozen v1: literal payloads of an old producer still decode ------------------------------
# These bytes are written out by hand on purpose: never build them from current code.

V1_EXAMPLES: list[tuple[str, bytes, bytes, Event]] = [
    (
        topics.FOLLOWS,
        b"user-000042",
        b'{"schema_version":1,"event_id":"f1","ts":1700000000000,"user_id":"user-000042",'
        b'"followee_id":"user-000007","action":"unfollow"}',
        models.Follow("f1", 1700000000000, "user-000042", "user-000007", follow=False),
    ),
    (
        topics.SPONSORED,
        b"camp-7",
        b'{"schema_version":1,"event_id":"s1","ts":1700000000000,"campaign_id":"camp-7",'
        b'"item_id":"item-000007","bid":0.25,"budget":50,"start_ts":1700000000000,'
        b'"end_ts":1700086400000,"categories":["coffee"]}',
        models.Campaign("s1", 1700000000000, "camp-7", "item-000007", 0.25, 50.0,
                        1700000000000, 1700086400000, ("coffee",), None),
    ),
    (
        topics.COMMENTS,
        b"user-000042",
        b'{"schema_version":1,"event_id":"legacy:c1","ts":1700000000000,'
        b'"user_id":"user-000042","text":"Great grinder, fine and even.",'
        b'"item_id":"item-000007","rating":5}',
        models.Comment(event_id="legacy:c1", ts=1700000000000, user_id="user-000042",
                       text="Great grinder, fine and even.", item_id="item-000007", rating=5),
    ),
    (
        topics.COMMENTS,
        b"user-000042",
        b'{"schema_version":1,"event_id":"legacy:c2","ts":1700000000001,'
        b'"user_id":"user-000042","text":"\xe9\x9d\x9e\xe5\xb8\xb8\xe5\xa5\xbd"}',
        models.Comment("legacy:c2", 1700000000001, "user-000042", "非常好"),
    ),
    (
        topics.CLICKS,
        b"user-000042",
        b'{"schema_version":1,"event_id":"legacy:k1","ts":1700000000002,'
        b'"user_id":"user-000042","item_id":"item-000007"}',
        models.Click("legacy:k1", 1700000000002, "user-000042", "item-000007"),
    ),
    (
        topics.PURCHASES,
        b"user-000042",
        b'{"schema_version":1,"event_id":"legacy:p1","ts":1700000000003,'
        b'"user_id":"user-000042","item_id":"item-000007","amount":59.98,"quantity":2}',
        models.Purchase("legacy:p1", 1700000000003, "user-000042", "item-000007", 59.98, 2),
    ),
    (
        topics.PURCHASES,
        b"user-000042",
        # An integral amount, as some producers write prices in whole units.
        b'{"schema_version":1,"event_id":"legacy:p2","ts":1700000000004,'
        b'"user_id":"user-000042","item_id":"item-000008","amount":30,"quantity":1}',
        models.Purchase("legacy:p2", 1700000000004, "user-000042", "item-000008", 30.0, 1),
    ),
    (
        topics.USERS,
        b"user-000042",
        b'{"schema_version":1,"event_id":"legacy:u1","ts":1700000000000,'
        b'"user_id":"user-000042","age_band":"25-34","gender":"f","spend_level":"high",'
        b'"numeric":{"tenure_days":812.0,"orders":12}}',
        models.UserAttributes(event_id="legacy:u1", ts=1700000000000, user_id="user-000042",
                              age_band="25-34", gender="f", spend_level="high",
                              numeric={"tenure_days": 812.0, "orders": 12.0}),
    ),
    (
        topics.USERS,
        b"user-000043",
        b'{"schema_version":1,"event_id":"legacy:u2","ts":1700000000000,"user_id":"user-000043"}',
        models.UserAttributes(event_id="legacy:u2", ts=1700000000000, user_id="user-000043"),
    ),
    (
        topics.ITEMS,
        b"item-000007",
        b'{"schema_version":1,"event_id":"legacy:i7","ts":1699999999000,'
        b'"item_id":"item-000007","title":"Burr Grinder BG-100",'
        b'"description":"A steel burr grinder.","tags":["coffee","grinder"],'
        b'"category":"coffee"}',
        models.Item(event_id="legacy:i7", ts=1699999999000, item_id="item-000007",
                    title="Burr Grinder BG-100", description="A steel burr grinder.",
                    tags=("coffee", "grinder"), category="coffee"),
    ),
    (
        topics.ITEMS,
        b"item-000008",
        b'{"schema_version":1,"event_id":"legacy:i8","ts":1699999999000,'
        b'"item_id":"item-000008","title":"Paper filters"}',
        models.Item("legacy:i8", 1699999999000, "item-000008", "Paper filters"),
    ),
    (
        topics.ERASE,
        b"user-000042",
        b'{"schema_version":1,"event_id":"legacy:x1","ts":1700000000000,"user_id":"user-000042"}',
        models.Erasure(event_id="legacy:x1", ts=1700000000000, user_id="user-000042"),
    ),
]


@pytest.mark.parametrize(
    ("topic", "key", "value", "expected"),
    V1_EXAMPLES,
    ids=[f"{t}:{json.loads(v)['event_id']}" for t, _, v, _ in V1_EXAMPLES],
)
def test_v1_payload_still_decodes(topic: str, key: bytes, value: bytes, expected: Event) -> None:
    assert_valid(codec.TOPIC_SCHEMAS[topic][0], json.loads(value))
    got = codec.decode(topic, key, value, SRC, codec.Limits())
    assert got == Envelope(expected, SRC)


def test_v1_examples_cover_every_event_topic() -> None:
    assert {topic for topic, *_ in V1_EXAMPLES} == set(codec.TOPIC_SCHEMAS)


def test_v1_item_text_is_what_the_encoder_saw() -> None:
    # The item text feeds the encoder; changing it silently moves every stored item vector.
    item = next(e for _, _, v, e in V1_EXAMPLES if b"legacy:i7" in v)
    assert isinstance(item, models.Item)
    assert item.text() == "Burr Grinder BG-100. A steel burr grinder.. coffee, grinder"
    assert models.Item("e", 0, "i", "Only a title").text() == "Only a title"


# --- what our own producers write ------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Any:
    return synthetic_replay(n_items=60, n_users=30, n_events=600, seed=11)


def _check_outbound(events: list[OutboundEvent]) -> None:
    for event in events:
        schema_name, key_field = codec.TOPIC_SCHEMAS[event.topic]
        assert_valid(schema_name, event.value)
        assert event.value[key_field] == event.key
        key, value = event.encode()
        decoded = codec.decode(event.topic, key, value, SRC, codec.Limits())
        assert isinstance(decoded, Envelope), decoded


def test_synthetic_items_match_the_item_schema(world: Any) -> None:
    assert world.items and {e.topic for e in world.items} == {topics.ITEMS}
    _check_outbound(world.items)


def test_synthetic_users_match_the_user_schema(world: Any) -> None:
    assert world.users and {e.topic for e in world.users} == {topics.USERS}
    _check_outbound(world.users)


def test_synthetic_events_match_their_topic_schemas(world: Any) -> None:
    assert {e.topic for e in world.events} == {topics.COMMENTS, topics.CLICKS, topics.PURCHASES}
    _check_outbound(world.events)


def test_recommendation_record_matches_its_schema() -> None:
    payload = recommendation_record(
        "user-000042",
        [("item-000007", 0.912345678), ("item-000008", -0.25), ("item-000009", 0.0)],
        "fused-v1(mix_text=0.5)",
        ["legacy:c1", "legacy:k1"],
        1700000000002,
    )
    record = json.loads(payload)
    assert_valid("recommendation", record)
    assert record["items"] == ["item-000007", "item-000008", "item-000009"]
    assert record["scores"] == [0.912346, -0.25, 0.0]
    assert record["trigger_ts"] == 1700000000002
    assert isinstance(record["published_ts"], int) and record["published_ts"] > 1700000000002


def test_empty_recommendation_record_matches_its_schema() -> None:
    record = json.loads(recommendation_record("u", [], "m", [], 0))
    assert_valid("recommendation", record)
    assert record["items"] == [] and record["scores"] == []


def test_dead_letter_matches_its_schema() -> None:
    rejected = codec.decode(topics.CLICKS, b"\xffkey", b"\x00not json", SRC, codec.Limits())
    assert isinstance(rejected, codec.Rejected)
    letter = dead_letter(rejected, "worker-7")
    record = json.loads(letter.value)
    assert_valid("dead_letter", record)
    assert record["schema_version"] == 2
    assert record["reason"] == "invalid_json"
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "llmrec.test",
        3,
        42,
    )
    assert base64.b64decode(record["key"]) == b"\xffkey"
    assert base64.b64decode(record["value"]) == b"\x00not json"
    assert record["value_sha256"] == hashlib.sha256(b"\x00not json").hexdigest()
    assert record["key_sha256"] == hashlib.sha256(b"\xffkey").hexdigest()
    assert (record["value_length"], record["key_length"]) == (9, 4)
    assert record["truncated"] is False
    assert record["worker_id"] == "worker-7"
    headers = dict(letter.headers)
    assert letter.key == b"\xffkey"
    assert headers["llmrec.reason"] == b"invalid_json"
    assert headers["llmrec.truncated"] == b"false"
    assert headers["llmrec.value.sha256"] == record["value_sha256"].encode()
    assert headers["__connect.errors.topic"] == b"llmrec.test"
    assert headers["__connect.errors.partition"] == b"3"
    assert headers["__connect.errors.offset"] == b"42"
    assert headers["__connect.errors.exception.class.name"] == b"JSONDecodeError"


def test_a_v1_dead_letter_still_validates() -> None:
    # as workers before schema_version 2 wrote them: the whole key and value, base64
    v1 = {
        "schema_version": 1, "reason": "invalid_json", "detail": "Expecting value",
        "source_topic": "llmrec.clicks", "source_partition": 0, "source_offset": 7,
        "exception": "JSONDecodeError", "key": "dTE=", "value": "AG5vdCBqc29u",
        "worker_id": "w", "ts": 1700000000000,
    }  # fmt: skip
    assert_valid("dead_letter", v1)
    assert list(validator("dead_letter").iter_errors({**v1, "schema_version": 2}))


def test_dead_letter_without_key_or_value_matches_its_schema() -> None:
    rejected = codec.decode(topics.COMMENTS, None, None, SRC, codec.Limits())
    assert isinstance(rejected, codec.Rejected)
    record = json.loads(dead_letter(rejected, "w").value)
    assert_valid("dead_letter", record)
    assert record["key"] is None and record["value"] is None
    assert record["value_sha256"] is None and record["value_length"] is None


def test_dead_letter_truncates_a_long_detail() -> None:
    rejected = codec.Rejected("schema_violation", "x" * 5000, SRC, "E", b"k", b"v")
    letter = dead_letter(rejected, "w")
    record = json.loads(letter.value)
    assert_valid("dead_letter", record)
    assert record["detail"] == "x" * 2000
    assert dict(letter.headers)["__connect.errors.exception.message"] == b"x" * 500


@pytest.mark.parametrize("size", [4097, 999_900, 1_048_500, 5_000_000])
def test_a_dead_letter_of_a_huge_value_keeps_a_prefix_and_the_digest_and_fits(size: int) -> None:
    value = bytes(range(256)) * (size // 256) + b"\xff" * (size % 256)
    key = b"k" * 2000
    rejected = codec.decode(topics.COMMENTS, key, value, SRC, codec.Limits())
    assert isinstance(rejected, codec.Rejected)
    fmt = DeadLetterFormat("w", value_prefix_bytes=4096, max_record_bytes=1_000_000)
    letter = fmt.letter(rejected)
    record = json.loads(letter.value)
    assert_valid("dead_letter", record)
    assert base64.b64decode(record["value"]) == value[:4096]
    assert record["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert record["value_length"] == size
    assert record["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert record["key_length"] == 2000 and letter.key == key[:512]
    assert record["truncated"] is True
    assert dict(letter.headers)["llmrec.truncated"] == b"true"
    assert dict(letter.headers)["llmrec.value.length"] == str(size).encode()
    assert letter.size < 4096 * 4 // 3 + 16 * 1024


def test_the_minimal_dead_letter_keeps_coordinates_and_digest_only() -> None:
    rejected = codec.Rejected("invalid_json", "d" * 2000, SRC, "JSONDecodeError", b"u", b"x" * 10)
    letter = DeadLetterFormat("w").minimal(rejected)
    record = json.loads(letter.value)
    assert_valid("dead_letter", record)
    assert record["value"] == "" and record["detail"] == ""
    assert record["value_sha256"] == hashlib.sha256(b"x" * 10).hexdigest()
    assert record["truncated"] is True and letter.size < 1200


def test_a_lone_surrogate_in_the_detail_does_not_break_the_dead_letter() -> None:
    rejected = codec.Rejected("schema_violation", "bad \ud800 text", SRC, "E", b"u", b"{}")
    record = json.loads(dead_letter(rejected, "w").value)
    assert "\\ud800" in record["detail"]


def test_the_value_prefix_is_checked_against_the_producer_request_size() -> None:
    check_prefix(4096, 1_000_000)
    check_prefix(max_value_prefix(1_000_000), 1_000_000)
    with pytest.raises(ValueError, match="LLMREC_DLQ_VALUE_PREFIX_BYTES"):
        check_prefix(max_value_prefix(1_000_000) + 1, 1_000_000)
    with pytest.raises(ValueError):
        DeadLetterFormat("w", value_prefix_bytes=900_000, max_record_bytes=1_000_000)
    # the largest allowed prefix still fits: base64 of it plus every other field
    rejected = codec.Rejected("invalid_json", "\x07" * 5000, SRC, "E", b"k" * 5000, b"v" * 2**20)
    prefix = max_value_prefix(1_000_000)
    letter = DeadLetterFormat("w", prefix, 1_000_000).letter(rejected)
    assert letter.size <= 1_000_000 - 100
    assert len(base64.b64decode(json.loads(letter.value)["value"])) == prefix


def test_dead_letters_of_every_codec_reason_match_the_schema() -> None:
    reasons = set(load("dead_letter")["properties"]["reason"]["enum"])
    good = {"schema_version": 1, "event_id": "e", "ts": 1, "user_id": "u", "text": "hi"}
    bad: list[tuple[bytes | None, bytes | None]] = [
        (b"u", b"{"),
        (b"u", b"\xff"),
        (b"u", b"[]"),
        (b"u", codec.dumps({**good, "ts": "1"})),
        (b"u", codec.dumps({**good, "schema_version": 9})),
        (b"x", codec.dumps(good)),
        (b"u", codec.dumps({**good, "text": " "})),
        (b"u", codec.dumps({**good, "text": "a\x07"})),
        (b"u", codec.dumps({**good, "text": "a" * 9000})),
        (b"u", codec.dumps({**good, "ts": 10**15})),
    ]
    seen = set()
    for key, value in bad:
        rejected = codec.decode(topics.COMMENTS, key, value, SRC, codec.Limits())
        assert isinstance(rejected, codec.Rejected)
        assert rejected.reason in reasons
        seen.add(rejected.reason)
        assert_valid("dead_letter", json.loads(dead_letter(rejected, "w").value))
    assert len(seen) == len(bad)
