"""Confluent's wire format at the boundary: framed and plain records decode alike; a record
that is neither is a dead letter that says so."""

from __future__ import annotations

import json

import pytest

from llmrec_stream.events import codec, topics
from llmrec_stream.events.codec import Limits, Rejected, decode, dumps, frame, unframe
from llmrec_stream.events.models import Click, Envelope, Source

SRC = Source(topics.CLICKS, 0, 7)
CLICK = {
    "schema_version": 1,
    "event_id": "e-1",
    "ts": 1_700_000_000_000,
    "user_id": "u1",
    "item_id": "i9",
}


def test_framed_and_plain_records_decode_to_the_same_event() -> None:
    plain = dumps(CLICK)
    framed = frame(42, plain)
    assert framed[:5] == b"\x00\x00\x00\x00\x2a"
    a = decode(topics.CLICKS, b"u1", plain, SRC, Limits())
    b = decode(topics.CLICKS, b"u1", framed, SRC, Limits())
    assert isinstance(a, Envelope) and isinstance(b, Envelope)
    assert isinstance(b.event, Click)
    assert a.event == b.event
    assert unframe(framed) == (42, plain) and unframe(plain) == (None, plain)


def test_a_framed_record_is_still_validated_against_the_local_schema() -> None:
    bad = frame(42, dumps({**CLICK, "item_id": 5}))
    rejected = decode(topics.CLICKS, b"u1", bad, SRC, Limits())
    assert isinstance(rejected, Rejected) and rejected.reason == "schema_violation"
    # the dead letter keeps the record as it came, frame and all
    assert rejected.value == bad


@pytest.mark.parametrize("first", [1, 2, 0x1F, 0x7F - 0x60])
def test_a_bad_magic_byte_is_a_dead_letter_with_its_reason(first: int) -> None:
    value = bytes([first]) + b"\x00\x00\x00\x2a" + dumps(CLICK)
    rejected = decode(topics.CLICKS, b"u1", value, SRC, Limits())
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "bad_magic_byte"
    assert f"0x{first:02x}" in rejected.detail and "magic byte 0" in rejected.detail
    assert rejected.value == value


def test_a_truncated_frame_is_a_dead_letter() -> None:
    rejected = decode(topics.CLICKS, b"u1", b"\x00\x00\x01", SRC, Limits())
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_magic_byte"
    assert "3 bytes" in rejected.detail


def test_json_with_leading_whitespace_is_not_taken_for_a_frame() -> None:
    value = b"\n\t " + dumps(CLICK)
    assert isinstance(decode(topics.CLICKS, b"u1", value, SRC, Limits()), Envelope)


def test_the_dead_letter_schema_knows_the_reason() -> None:
    schema = json.loads((codec.SCHEMAS_DIR / "dead_letter.json").read_text())
    assert "bad_magic_byte" in schema["properties"]["reason"]["enum"]
