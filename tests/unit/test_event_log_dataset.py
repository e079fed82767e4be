"""The trainer's data set from raw event-log records: order, item text, erasure, bad records."""

from __future__ import annotations

import json
from typing import Any

from llmrec_stream.events import topics
from llmrec_stream.pipeline import RawRecord
from llmrec_stream.sources.base import envelope
from llmrec_stream.trainer.event_log import dataset_from_records

_offsets: dict[str, int] = {}


def _record(topic: str, key: str, value: dict[str, Any] | bytes) -> RawRecord:
    offset = _offsets[topic] = _offsets.get(topic, -1) + 1
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return RawRecord(topic, 0, offset, key.encode(), raw)


def _item(item: str) -> RawRecord:
    value = {**envelope(f"item-{item}", 1), "item_id": item, "title": f"title {item}"}
    return _record(topics.ITEMS, item, value)


def _event(topic: str, user: str, item: str, ts: int) -> RawRecord:
    value = {**envelope(f"{user}-{item}-{ts}", ts), "user_id": user, "item_id": item}
    if topic == topics.PURCHASES:
        value |= {"amount": 10.0, "quantity": 1}
    if topic == topics.COMMENTS:
        value |= {"text": "nice"}
    return _record(topic, user, value)


def test_sequences_follow_time_across_topics_and_leave_out_what_must_go() -> None:
    records = [_item(i) for i in "abcde"]
    records += [
        _event(topics.CLICKS, "u1", "a", 10),
        _event(topics.CLICKS, "u1", "c", 30),
        _event(topics.PURCHASES, "u1", "b", 20),  # other topic, earlier ts: goes between
        _event(topics.COMMENTS, "u1", "d", 40),
        _record(topics.CLICKS, "u1", b"{not json"),  # a dead letter: left out
        _event(topics.CLICKS, "gone", "a", 10),
        _event(topics.CLICKS, "gone", "b", 11),
        _event(topics.CLICKS, "gone", "c", 12),
        _record(topics.ERASE, "gone", {**envelope("erase-1", 50), "user_id": "gone"}),
        _event(topics.CLICKS, "short", "e", 5),  # fewer than 3 items: dropped
    ]
    data = dataset_from_records(records, "log")
    assert data.user_ids == ["u1"]  # the erased user's earlier events are not trained on
    order = [data.item_ids[i - 1] for i in data.test_input()[0]] + [
        data.item_ids[data.test_target[0] - 1]
    ]
    assert order == ["a", "b", "c", "d"]
    assert data.item_ids == ["a", "b", "c", "d", "e"]
    assert data.item_text is not None and data.item_text[0] == "title a"
