"""The codec at the Kafka boundary: every dead-letter reason, every event type, and no crashes.

``decode`` promises to never raise for bad input: a raise would stop a Faust agent on one
poisoned record. The property tests feed it arbitrary bytes, arbitrary JSON and mutated
valid events; the explicit tests pin down each reason a record can be rejected for.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrec_stream.events import codec, topics
from llmrec_stream.events.codec import Limits, Rejected, decode, dumps
from llmrec_stream.events.models import (
    Campaign,
    Click,
    Comment,
    Envelope,
    Erasure,
    Follow,
    Item,
    Purchase,
    Source,
    UserAttributes,
)
from tests.unit.test_schemas import DEAD_LETTER_REASONS

SRC = Source("llmrec.comments", 2, 1234)
LIMITS = Limits()
TS = 1_700_000_000_000

VALID: dict[str, dict[str, Any]] = {
    topics.COMMENTS: {
        "schema_version": 1,
        "event_id": "e-c",
        "ts": TS,
        "user_id": "u1",
        "text": "Lovely kettle, boils fast.",
        "item_id": "i1",
        "rating": 4,
    },
    topics.CLICKS: {
        "schema_version": 1,
        "event_id": "e-k",
        "ts": TS,
        "user_id": "u1",
        "item_id": "i1",
    },
    topics.PURCHASES: {
        "schema_version": 1,
        "event_id": "e-p",
        "ts": TS,
        "user_id": "u1",
        "item_id": "i1",
        "amount": 19.99,
        "quantity": 1,
    },
    topics.USERS: {
        "schema_version": 1,
        "event_id": "e-u",
        "ts": TS,
        "user_id": "u1",
        "age_band": "35-44",
        "gender": "x",
        "spend_level": "mid",
        "numeric": {"tenure_days": 10.0},
    },
    topics.ITEMS: {
        "schema_version": 1,
        "event_id": "e-i",
        "ts": TS,
        "item_id": "i1",
        "title": "Kettle",
        "description": "Steel kettle.",
        "tags": ["kitchen"],
        "category": "home",
    },
    topics.ERASE: {"schema_version": 1, "event_id": "e-x", "ts": TS, "user_id": "u1"},
    topics.SPONSORED: {
        "schema_version": 1,
        "event_id": "e-s",
        "ts": TS,
        "campaign_id": "c1",
        "item_id": "i1",
        "bid": 0.5,
        "budget": 100.0,
        "start_ts": TS - 1000,
        "end_ts": TS + 86_400_000,
        "categories": ["home"],
        "query": "a quiet kettle",
    },
    topics.FOLLOWS: {
        "schema_version": 1,
        "event_id": "e-f",
        "ts": TS,
        "user_id": "u1",
        "followee_id": "u2",
        "action": "follow",
    },
}
KEY = {topic: VALID[topic][codec.TOPIC_SCHEMAS[topic][1]].encode() for topic in VALID}
EVENT_TOPICS = sorted(codec.TOPIC_SCHEMAS)


def dec(
    topic: str,
    obj: dict[str, Any] | bytes | None,
    key: bytes | None = None,
    limits: Limits = LIMITS,
) -> Envelope | Rejected:
    value = obj if obj is None or isinstance(obj, bytes) else dumps(obj)
    return decode(topic, KEY[topic] if key is None else key, value, SRC, limits)


def rejected(
    topic: str,
    obj: dict[str, Any] | bytes | None,
    reason: str,
    key: bytes | None = None,
    limits: Limits = LIMITS,
) -> Rejected:
    """Decode, and check the Rejected carries the reason, coordinates, raw bytes, class name."""
    value = obj if obj is None or isinstance(obj, bytes) else dumps(obj)
    raw_key = KEY[topic] if key is None else key
    got = decode(topic, raw_key, value, SRC, limits)
    assert isinstance(got, Rejected), got
    assert got.reason == reason, got
    assert got.source == SRC
    assert got.key == raw_key
    assert got.value == value
    assert got.exception and got.exception.isidentifier()
    assert got.detail
    return got


def with_(topic: str, **changes: Any) -> dict[str, Any]:
    return {**VALID[topic], **changes}


def without(topic: str, field: str) -> dict[str, Any]:
    return {k: v for k, v in VALID[topic].items() if k != field}


# --- the valid events ------------------------------------------------------------------------


def test_comment_decodes_to_a_comment() -> None:
    got = dec(topics.COMMENTS, VALID[topics.COMMENTS])
    assert got == Envelope(
        Comment("e-c", TS, "u1", "Lovely kettle, boils fast.", item_id="i1", rating=4), SRC
    )


def test_chinese_comment_decodes_with_its_text_intact() -> None:
    text = "这个水壶烧水很快，质量也很好！推荐购买。"
    got = dec(topics.COMMENTS, with_(topics.COMMENTS, text=text))
    assert isinstance(got, Envelope)
    assert isinstance(got.event, Comment)
    assert got.event.text == text


def test_chinese_user_id_and_key_match() -> None:
    obj = with_(topics.CLICKS, user_id="用户-七")
    got = dec(topics.CLICKS, obj, key="用户-七".encode())
    assert got == Envelope(Click("e-k", TS, "用户-七", "i1"), SRC)


def test_comment_without_item_or_rating() -> None:
    obj = without(topics.COMMENTS, "item_id")
    del obj["rating"]
    got = dec(topics.COMMENTS, obj)
    assert got == Envelope(Comment("e-c", TS, "u1", "Lovely kettle, boils fast."), SRC)
    assert isinstance(got.event, Comment)
    assert got.event.item_id is None and got.event.rating is None


def test_click_decodes_to_a_click() -> None:
    assert dec(topics.CLICKS, VALID[topics.CLICKS]) == Envelope(Click("e-k", TS, "u1", "i1"), SRC)


def test_purchase_decodes_to_a_purchase_with_a_float_amount() -> None:
    got = dec(topics.PURCHASES, with_(topics.PURCHASES, amount=20, quantity=3))
    assert got == Envelope(Purchase("e-p", TS, "u1", "i1", 20.0, 3), SRC)
    assert isinstance(got.event, Purchase)
    assert type(got.event.amount) is float
    assert type(got.event.quantity) is int


def test_free_purchase_is_valid() -> None:
    got = dec(topics.PURCHASES, with_(topics.PURCHASES, amount=0))
    assert isinstance(got, Envelope)


def test_user_attributes_with_a_numeric_map() -> None:
    obj = with_(topics.USERS, numeric={"tenure_days": 812, "avg_basket": 23.5, "neg": -1})
    got = dec(topics.USERS, obj)
    assert got == Envelope(
        UserAttributes(
            "e-u",
            TS,
            "u1",
            "35-44",
            "x",
            "mid",
            {"tenure_days": 812.0, "avg_basket": 23.5, "neg": -1.0},
        ),
        SRC,
    )
    assert isinstance(got.event, UserAttributes)
    assert all(type(v) is float for v in got.event.numeric.values())


def test_user_attributes_default_to_unknown() -> None:
    obj = {k: VALID[topics.USERS][k] for k in ("schema_version", "event_id", "ts", "user_id")}
    got = dec(topics.USERS, obj)
    assert got == Envelope(UserAttributes("e-u", TS, "u1"), SRC)
    assert isinstance(got.event, UserAttributes)
    assert (got.event.age_band, got.event.gender, got.event.spend_level) == ("unknown",) * 3
    assert got.event.numeric == {}


def test_item_decodes_with_tags_as_a_tuple() -> None:
    got = dec(topics.ITEMS, with_(topics.ITEMS, tags=["kitchen", "steel"]))
    assert got == Envelope(
        Item("e-i", TS, "i1", "Kettle", "Steel kettle.", ("kitchen", "steel"), "home"), SRC
    )


def test_item_without_optional_fields() -> None:
    obj = {
        k: VALID[topics.ITEMS][k] for k in ("schema_version", "event_id", "ts", "item_id", "title")
    }
    assert dec(topics.ITEMS, obj) == Envelope(Item("e-i", TS, "i1", "Kettle"), SRC)


def test_unknown_extra_fields_are_ignored() -> None:
    got = dec(topics.CLICKS, with_(topics.CLICKS, session="s-9", referrer={"page": 3}))
    assert got == Envelope(Click("e-k", TS, "u1", "i1"), SRC)


def test_text_exactly_at_the_limit_is_accepted() -> None:
    text = "水" * 3  # 9 bytes of UTF-8
    got = dec(topics.COMMENTS, with_(topics.COMMENTS, text=text), limits=Limits(max_text_bytes=9))
    assert isinstance(got, Envelope)


def test_newlines_and_tabs_are_not_control_characters() -> None:
    got = dec(topics.COMMENTS, with_(topics.COMMENTS, text="Good.\n\tWould buy again.\r\n"))
    assert isinstance(got, Envelope)


def test_timestamp_within_the_skew_is_accepted() -> None:
    soon = int(time.time() * 1000) + 60_000
    got = dec(topics.CLICKS, with_(topics.CLICKS, ts=soon), limits=Limits(max_future_skew_s=300))
    assert isinstance(got, Envelope)


# --- every dead-letter reason ----------------------------------------------------------------


def test_invalid_json() -> None:
    got = rejected(topics.CLICKS, b'{"schema_version": 1,', "invalid_json")
    assert got.exception == "JSONDecodeError"


def test_invalid_utf8() -> None:
    got = rejected(topics.CLICKS, b'{"text": "\xff\xfe"}', "invalid_utf8")
    assert got.exception == "UnicodeDecodeError"


@pytest.mark.parametrize("value", [b"[1, 2]", b'"a string"', b"42", b"null", b"true"])
def test_not_an_object(value: bytes) -> None:
    got = rejected(topics.CLICKS, value, "not_an_object")
    assert got.exception == "EventValidationError"


def test_tombstone_is_not_an_object() -> None:
    rejected(topics.ITEMS, None, "not_an_object")


@pytest.mark.parametrize(
    ("topic", "obj"),
    [
        pytest.param(topics.CLICKS, with_(topics.CLICKS, ts="1700000000000"), id="ts-string"),
        pytest.param(topics.CLICKS, with_(topics.CLICKS, item_id=7), id="item-id-int"),
        pytest.param(topics.CLICKS, without(topics.CLICKS, "item_id"), id="missing-item-id"),
        pytest.param(topics.CLICKS, without(topics.CLICKS, "event_id"), id="missing-event-id"),
        pytest.param(topics.CLICKS, without(topics.CLICKS, "schema_version"), id="no-version"),
        pytest.param(topics.COMMENTS, without(topics.COMMENTS, "text"), id="missing-text"),
        pytest.param(topics.ITEMS, without(topics.ITEMS, "title"), id="missing-title"),
        pytest.param(topics.PURCHASES, with_(topics.PURCHASES, amount=-0.01), id="neg-amount"),
        pytest.param(topics.PURCHASES, with_(topics.PURCHASES, amount=1e12), id="absurd-amount"),
        pytest.param(topics.PURCHASES, with_(topics.PURCHASES, quantity=0), id="zero-quantity"),
        pytest.param(topics.PURCHASES, with_(topics.PURCHASES, quantity=True), id="bool-qty"),
        pytest.param(topics.PURCHASES, with_(topics.PURCHASES, amount=False), id="bool-amount"),
        pytest.param(topics.CLICKS, with_(topics.CLICKS, ts=True), id="bool-ts"),
        pytest.param(topics.CLICKS, with_(topics.CLICKS, schema_version=True), id="bool-version"),
        pytest.param(topics.CLICKS, with_(topics.CLICKS, ts=-1), id="negative-ts"),
        pytest.param(topics.CLICKS, with_(topics.CLICKS, ts=1.5), id="fractional-ts"),
        pytest.param(topics.COMMENTS, with_(topics.COMMENTS, rating=6), id="rating-6"),
        pytest.param(topics.COMMENTS, with_(topics.COMMENTS, rating=True), id="bool-rating"),
        pytest.param(topics.COMMENTS, with_(topics.COMMENTS, item_id=""), id="empty-item-id"),
        pytest.param(topics.USERS, with_(topics.USERS, gender="female"), id="gender-enum"),
        pytest.param(topics.USERS, with_(topics.USERS, numeric={"a": "1"}), id="numeric-str"),
        pytest.param(topics.USERS, with_(topics.USERS, numeric={"a": True}), id="numeric-bool"),
        pytest.param(
            topics.USERS,
            with_(topics.USERS, numeric={f"k{i}": 1.0 for i in range(33)}),
            id="numeric-too-many",
        ),
        pytest.param(topics.ITEMS, with_(topics.ITEMS, tags="kitchen"), id="tags-string"),
        pytest.param(topics.ITEMS, with_(topics.ITEMS, tags=[1]), id="tags-int"),
        pytest.param(topics.CLICKS, with_(topics.CLICKS, event_id="e" * 129), id="long-id"),
    ],
)
def test_schema_violation(topic: str, obj: dict[str, Any]) -> None:
    got = rejected(topic, obj, "schema_violation")
    assert got.exception == "JsonSchemaValueException"
    assert got.detail.startswith(codec.TOPIC_SCHEMAS[topic][0] + ":")


def test_schema_violation_for_a_topic_without_schema() -> None:
    value = dumps(VALID[topics.CLICKS])
    got = decode(topics.RECOMMENDATIONS, b"u1", value, SRC, LIMITS)
    assert isinstance(got, Rejected)
    assert got.reason == "schema_violation"
    assert (got.source, got.key, got.value) == (SRC, b"u1", value)
    assert got.exception == "EventValidationError"


@pytest.mark.parametrize("version", [2, 0, -1, 99])
def test_unknown_schema_version(version: int) -> None:
    got = rejected(
        topics.CLICKS, with_(topics.CLICKS, schema_version=version), "unknown_schema_version"
    )
    assert got.exception == "EventValidationError"
    assert str(version) in got.detail


def test_unknown_schema_version_wins_over_schema_violations() -> None:
    # A v2 event may legitimately lack v1 fields: say "unknown version", not "bad v1 event".
    obj = {"schema_version": 2, "event_id": "e", "ts": TS, "user_id": "u1", "renamed": "i1"}
    rejected(topics.CLICKS, obj, "unknown_schema_version")


def test_key_mismatch_wrong_key() -> None:
    got = rejected(topics.CLICKS, VALID[topics.CLICKS], "key_mismatch", key=b"u2")
    assert got.exception == "EventValidationError"
    assert "user_id" in got.detail


def test_key_mismatch_missing_key() -> None:
    value = dumps(VALID[topics.CLICKS])
    got = decode(topics.CLICKS, None, value, SRC, LIMITS)
    assert isinstance(got, Rejected)
    assert got.reason == "key_mismatch"
    assert (got.source, got.key, got.value) == (SRC, None, value)
    assert got.exception == "EventValidationError"


def test_key_mismatch_for_an_item_keyed_by_user() -> None:
    rejected(topics.ITEMS, VALID[topics.ITEMS], "key_mismatch", key=b"u1")


def test_key_mismatch_non_utf8_key() -> None:
    # A key that is not UTF-8 partitions differently from the user id's own bytes.
    obj = with_(topics.CLICKS, user_id="\ufffd")
    rejected(topics.CLICKS, obj, "key_mismatch", key=b"\xff")


def test_text_too_large_with_custom_limits() -> None:
    obj = with_(topics.COMMENTS, text="水" * 4)  # 12 bytes: the limit counts bytes, not chars
    got = rejected(topics.COMMENTS, obj, "text_too_large", limits=Limits(max_text_bytes=10))
    assert got.exception == "EventValidationError"
    assert "12" in got.detail and "10" in got.detail


def test_text_too_large_with_default_limits() -> None:
    rejected(topics.COMMENTS, with_(topics.COMMENTS, text="a" * 8193), "text_too_large")


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000"])
def test_empty_text(text: str) -> None:
    got = rejected(topics.COMMENTS, with_(topics.COMMENTS, text=text), "empty_text")
    assert got.exception == "EventValidationError"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x0b", "\x0c"])
def test_control_characters(char: str) -> None:
    obj = with_(topics.COMMENTS, text=f"fine{char}text")
    got = rejected(topics.COMMENTS, obj, "control_characters")
    assert got.exception == "EventValidationError"


@pytest.mark.parametrize("topic", EVENT_TOPICS)
def test_future_timestamp(topic: str) -> None:
    far = int((time.time() + 3600) * 1000)
    got = rejected(topic, with_(topic, ts=far), "future_timestamp")
    assert got.exception == "EventValidationError"


def test_future_timestamp_respects_custom_skew() -> None:
    soon = int((time.time() + 60) * 1000)
    rejected(
        topics.CLICKS,
        with_(topics.CLICKS, ts=soon),
        "future_timestamp",
        limits=Limits(max_future_skew_s=1),
    )


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_invalid_json(constant: bytes) -> None:
    value = (
        b'{"schema_version":1,"event_id":"e-p","ts":1700000000000,"user_id":"u1",'
        b'"item_id":"i1","amount":' + constant + b',"quantity":1}'
    )
    got = rejected(topics.PURCHASES, value, "invalid_json")
    assert got.exception == "ValueError"


def test_nan_inside_a_nested_map_is_invalid_json() -> None:
    value = (
        b'{"schema_version":1,"event_id":"e-u","ts":1700000000000,"user_id":"u1",'
        b'"numeric":{"a":NaN}}'
    )
    rejected(topics.USERS, value, "invalid_json")


# --- regressions: inputs that once made decode raise or mistype an event --------------------


def _never_raises(topic: str, key: bytes | None, value: bytes | None) -> Envelope | Rejected:
    try:
        return decode(topic, key, value, SRC, LIMITS)
    except Exception as exc:  # the point is that nothing escapes
        pytest.fail(f"decode raised {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("version", [[1], {"v": 1}], ids=["list", "dict"])
def test_unhashable_schema_version_is_rejected(version: Any) -> None:
    got = _never_raises(topics.CLICKS, b"u1", dumps(with_(topics.CLICKS, schema_version=version)))
    assert isinstance(got, Rejected) and got.reason == "schema_violation"


def test_lone_surrogate_in_text_is_rejected() -> None:
    value = (
        b'{"schema_version":1,"event_id":"e","ts":1700000000000,"user_id":"u1",'
        b'"text":"bad \\ud800 text"}'
    )
    got = _never_raises(topics.COMMENTS, b"u1", value)
    assert isinstance(got, Rejected) and got.reason == "invalid_utf8"


def test_huge_integer_in_numeric_map_is_rejected() -> None:
    value = (
        b'{"schema_version":1,"event_id":"e","ts":1700000000000,"user_id":"u1",'
        b'"numeric":{"a":1' + b"0" * 400 + b"}}"
    )
    got = _never_raises(topics.USERS, b"u1", value)
    assert isinstance(got, Rejected) and got.reason == "schema_violation"


def test_deeply_nested_json_is_rejected() -> None:
    value = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    got = _never_raises(topics.CLICKS, b"u1", value)
    assert isinstance(got, Rejected) and got.reason == "invalid_json"


def test_integral_floats_become_ints() -> None:
    got = dec(topics.PURCHASES, with_(topics.PURCHASES, ts=float(TS), quantity=2.0))
    assert isinstance(got, Envelope) and isinstance(got.event, Purchase)
    assert type(got.event.ts) is int
    assert type(got.event.quantity) is int


def test_integral_float_rating_becomes_an_int() -> None:
    got = dec(topics.COMMENTS, with_(topics.COMMENTS, rating=4.0))
    assert isinstance(got, Envelope) and isinstance(got.event, Comment)
    assert got.event.rating == 4 and type(got.event.rating) is int


@pytest.mark.parametrize(
    ("field", "topic"),
    [("user_id", topics.CLICKS), ("title", topics.ITEMS), ("event_id", topics.PURCHASES)],
)
def test_lone_surrogate_in_any_field_is_rejected(field: str, topic: str) -> None:
    obj = with_(topic, **{field: "x\udc00y"})
    got = _never_raises(topic, KEY[topic], json.dumps(obj).encode())
    assert isinstance(got, Rejected) and got.reason == "invalid_utf8"


def test_lone_surrogate_in_a_property_name_is_rejected() -> None:
    obj = with_(topics.CLICKS, **{"\ud800": 1})
    got = _never_raises(topics.CLICKS, KEY[topics.CLICKS], json.dumps(obj).encode())
    assert isinstance(got, Rejected) and got.reason == "invalid_utf8"


def test_escaped_surrogate_pair_is_ordinary_text() -> None:
    # "\ud83d\ude00" is how an ASCII-only producer writes an emoji: it must stay valid.
    value = json.dumps(with_(topics.COMMENTS, text="Love it \U0001f600")).encode()
    assert b"\\ud83d\\ude00" in value
    got = dec(topics.COMMENTS, value)
    assert isinstance(got, Envelope) and isinstance(got.event, Comment)
    assert got.event.text == "Love it \U0001f600"


def _nested(depth: int, leaf: bytes) -> bytes:
    inner = b'{"a":' * depth + leaf + b"}" * depth
    return (
        b'{"schema_version":1,"event_id":"e","ts":1700000000000,"user_id":"u1",'
        b'"item_id":"i1","extra":' + inner + b"}"
    )


@pytest.mark.parametrize("depth", [50, 400, 700, 990, 5000])
def test_nested_json_never_raises(depth: int) -> None:
    got = _never_raises(topics.CLICKS, b"u1", _nested(depth, b"1"))
    assert isinstance(got, Envelope | Rejected)


def test_nested_json_with_an_escape_never_raises() -> None:
    got = _never_raises(topics.CLICKS, b"u1", _nested(700, b'"\\u0041"'))
    assert isinstance(got, Envelope | Rejected)


# --- property-based: decode never raises -----------------------------------------------------

# Text includes lone surrogates (category Cs) and integers are unbounded: both once made decode
# raise. Values are written with json.dumps' default ensure_ascii, so surrogates travel as
# \uXXXX escapes, the only way they can reach the codec.
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted({name for obj in VALID.values() for name in obj})
json_objects = st.dictionaries(st.sampled_from(FIELD_NAMES) | any_text, json_values, max_size=10)
keys = st.none() | st.binary(max_size=16) | st.sampled_from([b"u1", b"i1"])
#: The reasons decode can give (arbitrary bytes may even start with a control byte:
#: bad_magic_byte); the catalog and the encoder, behind decode, give the other two.
DECODE_REASONS = frozenset(DEAD_LETTER_REASONS) - {"unknown_item", "encoding_failed"}
PROP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_result(got: Envelope | Rejected, topic: str) -> None:
    assert isinstance(got, Envelope | Rejected)
    if isinstance(got, Rejected):
        assert got.reason in DECODE_REASONS
        assert got.source == SRC
        assert got.exception.isidentifier() and got.detail
    else:
        assert got.source == SRC
        schema_name = codec.TOPIC_SCHEMAS[topic][0]
        expected = {
            "comment": Comment,
            "click": Click,
            "purchase": Purchase,
            "user": UserAttributes,
            "item": Item,
            "erase": Erasure,
            "follow": Follow,
            "sponsored": Campaign,
        }[schema_name]
        assert type(got.event) is expected


@PROP
@given(topic=st.sampled_from(EVENT_TOPICS), key=keys, value=st.none() | st.binary(max_size=200))
def test_decode_never_raises_for_arbitrary_bytes(
    topic: str, key: bytes | None, value: bytes | None
) -> None:
    got = decode(topic, key, value, SRC, LIMITS)
    _check_result(got, topic)
    if isinstance(got, Rejected):
        assert (got.key, got.value) == (key, value)


@settings(PROP, max_examples=100)
@given(topic=st.sampled_from(EVENT_TOPICS), key=keys, obj=json_objects)
def test_decode_never_raises_for_arbitrary_json_objects(
    topic: str, key: bytes | None, obj: dict[str, Any]
) -> None:
    _check_result(decode(topic, key, json.dumps(obj).encode(), SRC, LIMITS), topic)


@PROP
@given(topic=st.sampled_from(EVENT_TOPICS), value=json_values)
def test_decode_never_raises_for_arbitrary_json_values(topic: str, value: Any) -> None:
    got = decode(topic, KEY[topic], json.dumps(value).encode(), SRC, LIMITS)
    _check_result(got, topic)
    if not isinstance(value, dict):
        assert isinstance(got, Rejected)
        # a lone surrogate anywhere is reported before the shape
        assert got.reason in {"not_an_object", "invalid_utf8"}


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    topic = draw(st.sampled_from(EVENT_TOPICS))
    obj = dict(VALID[topic])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        field = draw(st.sampled_from(sorted(obj) or ["schema_version"]))
        action = draw(st.sampled_from(["drop", "retype"]))
        if action == "drop":
            obj.pop(field, None)
        else:
            obj[field] = draw(json_values)
    return topic, obj


@PROP
@given(case=mutated_events())
def test_decode_never_raises_for_mutated_valid_events(case: tuple[str, dict[str, Any]]) -> None:
    topic, obj = case
    _check_result(decode(topic, KEY[topic], json.dumps(obj).encode(), SRC, LIMITS), topic)


@PROP
@given(topic=st.sampled_from(EVENT_TOPICS), field=st.data())
def test_dropping_a_required_field_is_a_schema_violation(topic: str, field: st.DataObject) -> None:
    schema = json.loads((codec.SCHEMAS_DIR / f"{codec.TOPIC_SCHEMAS[topic][0]}.json").read_text())
    name = field.draw(st.sampled_from(schema["required"]))
    got = dec(topic, without(topic, name))
    assert isinstance(got, Rejected)
    assert got.reason == "schema_violation"


@PROP
@given(text=st.text(min_size=1, max_size=200))
def test_comment_text_is_accepted_or_rejected_for_a_text_reason(text: str) -> None:
    got = dec(topics.COMMENTS, with_(topics.COMMENTS, text=text))
    if isinstance(got, Envelope):
        assert isinstance(got.event, Comment) and got.event.text == text
    else:
        assert got.reason in {"empty_text", "control_characters"}


@pytest.mark.parametrize("topic", EVENT_TOPICS)
def test_every_valid_example_decodes(topic: str) -> None:
    got = dec(topic, VALID[topic])
    assert isinstance(got, Envelope)
    _check_result(got, topic)


def test_a_follow_decodes_and_a_self_follow_is_a_dead_letter() -> None:
    got = dec(topics.FOLLOWS, with_(topics.FOLLOWS, action="unfollow"))
    assert got == Envelope(Follow("e-f", TS, "u1", "u2", follow=False), SRC)
    rejected(topics.FOLLOWS, with_(topics.FOLLOWS, followee_id="u1"), "schema_violation")
    rejected(topics.FOLLOWS, with_(topics.FOLLOWS, action="block"), "schema_violation")
