"""The boundary: raw Kafka bytes in, a typed event or a dead letter out.

Every payload is checked against its versioned JSON Schema in ``schemas/`` before anything
else touches it. Rejections are values (``Rejected``), not exceptions, so a bad record
becomes a dead letter with its reason and the stream goes on.
"""

from __future__ import annotations

import json
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

# the input limits are the settings' ``limits`` section itself (one definition of the bounds)
from llmrec_stream.config import Limits as Limits
from llmrec_stream.events import topics
from llmrec_stream.events.models import (
    Campaign,
    Click,
    Comment,
    Envelope,
    Erasure,
    Event,
    Follow,
    Item,
    Purchase,
    Source,
    UserAttributes,
)

SCHEMAS_DIR = Path(__file__).with_name("schemas")
SUPPORTED_VERSIONS = frozenset({1})
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: Topic → (schema file, the field that must equal the record key).
TOPIC_SCHEMAS: dict[str, tuple[str, str]] = {
    topics.COMMENTS: ("comment", "user_id"),
    topics.CLICKS: ("click", "user_id"),
    topics.PURCHASES: ("purchase", "user_id"),
    topics.USERS: ("user", "user_id"),
    topics.ITEMS: ("item", "item_id"),
    topics.ERASE: ("erase", "user_id"),
    topics.SPONSORED: ("sponsored", "campaign_id"),
    topics.FOLLOWS: ("follow", "user_id"),
}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that failed validation: everything a dead letter needs."""

    reason: str
    detail: str
    source: Source
    exception: str
    key: bytes | None
    value: bytes | None


class EventValidationError(ValueError):
    """A record failed validation; ``reason`` is its dead-letter reason."""

    def __init__(self, reason: str, detail: str, cause: BaseException | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.cause = cause


@cache
def validator(schema_name: str) -> Callable[[Any], Any]:
    """The compiled validator of ``schemas/<schema_name>.json`` (compiled once per process)."""
    schema = json.loads((SCHEMAS_DIR / f"{schema_name}.json").read_text(encoding="utf-8"))
    compiled: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return compiled


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not JSON")


#: Confluent's wire format: magic byte 0, the 4-byte big-endian schema id, then the payload
#: (here the JSON). Producers that use a Schema Registry frame their records so; the local
#: schemas still decide what is valid (the id is not looked up: no registry is called).
MAGIC_BYTE = 0
_FRAME = struct.Struct(">BI")
#: First bytes that no JSON text starts with and that are not the magic byte: control
#: characters other than JSON's whitespace (tab, line feed, carriage return).
_NOT_JSON_START = frozenset(range(0x01, 0x20)) - {0x09, 0x0A, 0x0D}


def frame(schema_id: int, payload: bytes) -> bytes:
    """``payload`` in Confluent's wire format under ``schema_id``."""
    return _FRAME.pack(MAGIC_BYTE, schema_id) + payload


def unframe(value: bytes) -> tuple[int | None, bytes]:
    """The schema id (None for a plain record) and the payload of one record value.

    A record is framed when its first byte is the magic byte 0 (JSON never starts so). A
    first byte that is neither JSON nor 0 is a frame with a wrong magic byte.
    """
    if not value or value[0] != MAGIC_BYTE:
        if value and value[0] in _NOT_JSON_START:
            raise EventValidationError(
                "bad_magic_byte",
                f"first byte 0x{value[0]:02x}: neither JSON nor Confluent's wire format "
                "(magic byte 0, 4-byte schema id, payload)",
            )
        return None, value
    if len(value) < _FRAME.size:
        raise EventValidationError(
            "bad_magic_byte",
            f"a framed record of {len(value)} bytes: the wire format needs {_FRAME.size} "
            "(magic byte 0 and a 4-byte schema id) before the payload",
        )
    _, schema_id = _FRAME.unpack_from(value)
    return schema_id, value[_FRAME.size :]


def _parse(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise EventValidationError("not_an_object", "record has no value")
    _, value = unframe(value)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventValidationError("invalid_utf8", str(exc), exc) from exc
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise EventValidationError("invalid_json", str(exc)[:200], exc) from exc
    if "\\u" in text and _has_surrogate(obj):
        raise EventValidationError("invalid_utf8", "a string holds a lone UTF-16 surrogate")
    if not isinstance(obj, dict):
        raise EventValidationError(
            "not_an_object", f"expected a JSON object, got {type(obj).__name__}"
        )
    return obj


def _has_surrogate(obj: Any) -> bool:
    """JSON escapes can spell lone surrogates, which are not text and cannot be re-encoded.

    Iterative, so nesting depth cannot blow the stack.
    """
    pending = [obj]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node) is not None:
                return True
        elif isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return False


def _check_text(text: str, limits: Limits) -> None:
    if not text.strip():
        raise EventValidationError("empty_text", "comment text is empty")
    size = len(text.encode("utf-8"))
    if size > limits.max_text_bytes:
        raise EventValidationError(
            "text_too_large", f"text is {size} bytes, limit {limits.max_text_bytes}"
        )
    if _CONTROL.search(text):
        raise EventValidationError("control_characters", "text contains control characters")


def _build(topic: str, obj: dict[str, Any]) -> Event:
    # draft-07 counts 1.0 as an integer: the typed event gets a real int
    common = {"event_id": obj["event_id"], "ts": int(obj["ts"])}
    if topic == topics.COMMENTS:
        return Comment(
            **common,
            user_id=obj["user_id"],
            text=obj["text"],
            item_id=obj.get("item_id"),
            rating=None if obj.get("rating") is None else int(obj["rating"]),
        )
    if topic == topics.CLICKS:
        return Click(**common, user_id=obj["user_id"], item_id=obj["item_id"])
    if topic == topics.PURCHASES:
        return Purchase(
            **common,
            user_id=obj["user_id"],
            item_id=obj["item_id"],
            amount=float(obj["amount"]),
            quantity=int(obj["quantity"]),
        )
    if topic == topics.USERS:
        return UserAttributes(
            **common,
            user_id=obj["user_id"],
            age_band=obj.get("age_band", "unknown"),
            gender=obj.get("gender", "unknown"),
            spend_level=obj.get("spend_level", "unknown"),
            numeric={str(k): float(v) for k, v in obj.get("numeric", {}).items()},
        )
    if topic == topics.ERASE:
        return Erasure(**common, user_id=obj["user_id"])
    if topic == topics.SPONSORED:
        return Campaign(
            **common, campaign_id=obj["campaign_id"], item_id=obj["item_id"],
            bid=float(obj["bid"]), budget=float(obj["budget"]), start_ts=int(obj["start_ts"]),
            end_ts=int(obj["end_ts"]), categories=tuple(obj.get("categories", ())),
            query=obj.get("query"),
        )
    if topic == topics.FOLLOWS:
        return Follow(**common, user_id=obj["user_id"], followee_id=obj["followee_id"],
                      follow=obj["action"] == "follow")
    return Item(
        **common,
        item_id=obj["item_id"],
        title=obj["title"],
        description=obj.get("description", ""),
        tags=tuple(obj.get("tags", ())),
        category=obj.get("category"),
    )


def _validate(topic: str, key: bytes | None, obj: dict[str, Any], limits: Limits) -> Event:
    schema_name, key_field = TOPIC_SCHEMAS[topic]
    version = obj.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and (
        version not in SUPPORTED_VERSIONS
    ):
        raise EventValidationError(
            "unknown_schema_version", f"schema_version {version!r} is not supported"
        )
    try:
        validator(schema_name)(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise EventValidationError(
            "schema_violation", f"{schema_name}: {exc.message}", exc
        ) from exc
    if key is None or _key_text(key) != obj[key_field]:
        shown = None if key is None else key[:64].decode("utf-8", errors="replace")
        raise EventValidationError(
            "key_mismatch", f"record key {shown!r} is not the event's {key_field}"
        )
    if topic == topics.COMMENTS:
        _check_text(obj["text"], limits)
    if topic == topics.SPONSORED:
        if obj["end_ts"] <= obj["start_ts"]:
            raise EventValidationError("schema_violation", "sponsored: end_ts <= start_ts")
        if obj.get("query") is not None:
            _check_text(obj["query"], limits)
    if topic == topics.FOLLOWS and obj["followee_id"] == obj["user_id"]:
        raise EventValidationError("schema_violation", "follow: a user cannot follow themself")
    if obj["ts"] > (time.time() + limits.max_future_skew_s) * 1000:
        raise EventValidationError("future_timestamp", f"ts {obj['ts']} is in the future")
    return _build(topic, obj)


def _key_text(key: bytes) -> str | None:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode(
    topic: str, key: bytes | None, value: bytes | None, source: Source, limits: Limits
) -> Envelope | Rejected:
    """Validate one record of an event topic; never raises for bad input."""
    try:
        if topic not in TOPIC_SCHEMAS:
            raise EventValidationError("schema_violation", f"no schema for topic {topic!r}")
        event = _validate(topic, key, _parse(value), limits)
    except EventValidationError as exc:
        cause = exc.cause if exc.cause is not None else exc
        return Rejected(exc.reason, str(exc), source, type(cause).__name__, key, value)
    return Envelope(event, source)


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact JSON, UTF-8, as every producer of the project writes it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
