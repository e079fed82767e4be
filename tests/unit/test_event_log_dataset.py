"""The trainer's data set from raw event-log records: order, item text, erasure, bad records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrec_stream.events import topics
from llmrec_stream.events.records import RawRecord
from llmrec_stream.sources.base import envelope
from llmrec_stream.trainer.event_log import collapse_events, dataset_from_records

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


def test_a_review_replayed_as_comment_and_purchase_is_one_interaction() -> None:
    """A review is a comment and a purchase of one item 1 ms apart: one item, not an echo.

    Without the collapse the sequence is a a b b c c d d: every other next item equals the item
    before it, so the model learns to repeat and the held-out target (d) repeats its input.
    """
    records = [_item(i) for i in "abcd"]
    for n, item in enumerate("abcd"):
        ts = 1_000_000 * (n + 1)
        records += [_event(topics.COMMENTS, "r", item, ts),
                    _event(topics.PURCHASES, "r", item, ts + 1)]
    data = dataset_from_records(records, "reviews")
    names = [data.item_ids[i - 1] for i in data.train[0]]
    assert names == ["a", "b"]
    assert data.item_ids[data.valid_target[0] - 1] == "c"
    assert data.item_ids[data.test_target[0] - 1] == "d"
    # window 0 keeps the two events apart (only exact duplicates merge): the old behaviour
    apart = dataset_from_records(records, "reviews", collapse_window_ms=0)
    assert len(apart.train[0]) == 6


def test_collapse_keeps_the_strongest_type_and_the_first_position() -> None:
    events = [(0, topics.CLICKS, 0, "a"), (5, topics.CLICKS, 1, "b"),
              (10, topics.PURCHASES, 2, "a"), (20, topics.COMMENTS, 3, "a"),
              (500, topics.CLICKS, 4, "a")]
    assert collapse_events(events, 100) == [
        (0, topics.PURCHASES, "a"), (5, topics.CLICKS, "b"), (500, topics.CLICKS, "a"),
    ]
    assert len(collapse_events(events, 0)) == 5
    with pytest.raises(ValueError, match="window_ms"):
        collapse_events(events, -1)
