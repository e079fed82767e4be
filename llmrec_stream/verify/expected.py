"""What Redis must hold, from the input events alone: the verifier's expectations.

Every record as the broker stored it (value, partition, offset) is validated with the same
codec, then each user's events are kept in log order, minus those an erasure refuses, with
the offset watermarks; counters, attributes, the recent list and the (user, event) pairs that
must have driven a published recommendation follow from them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmrec_stream.events import topics
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Campaign, Erasure, Item, Source, UserAttributes, UserEvent
from llmrec_stream.kafka_log import read_records
from llmrec_stream.profiles.fusion import (
    MAX_ATTRIBUTES,
    attribute_fields,
    event_kind,
    merge_attributes,
)
from llmrec_stream.profiles.store import RecentEntry, topic_code
from llmrec_stream.replay import Delivered
from llmrec_stream.sources.base import OutboundEvent


@dataclass(slots=True)
class Expected:
    """One user's profile as the input events define it."""

    events: list[tuple[UserEvent, Source]] = field(default_factory=list)
    watermarks: dict[str, int] = field(default_factory=dict)
    erased_at: int | None = None
    """The time of the user's latest erasure: events up to it are refused (not in ``events``)."""

    def counts(self) -> dict[str, int]:
        kinds = Counter(event_kind(e) for e, _ in self.events)
        return dict(kinds)


def expected_profiles(
    records: Iterable[Delivered], known_items: set[str], limits: Limits | None = None
) -> tuple[dict[str, Expected], Counter[str]]:
    """Per-user expectations, and the dead letters (by reason) the input must have caused."""
    limits = limits or Limits(max_future_skew_s=10 * 365 * 86400)
    users: dict[str, Expected] = defaultdict(Expected)
    rejected: Counter[str] = Counter()
    records = list(records)
    erased_at: dict[str, int] = {}
    for rec in records:
        if rec.event.topic == topics.ERASE:
            key, value = rec.event.encode()
            src = Source(rec.event.topic, rec.partition, rec.offset)
            erasure = decode(src.topic, key, value, src, limits)
            if isinstance(erasure, Rejected):
                rejected[erasure.reason] += 1
            elif isinstance(erasure.event, Erasure):
                user = erasure.event.user_id
                erased_at[user] = max(erasure.event.ts, erased_at.get(user, erasure.event.ts))
    for rec in sorted(records, key=lambda r: (r.event.topic, r.partition, r.offset)):
        if rec.event.topic not in topics.USER_EVENT_TOPICS:
            continue
        key, value = rec.event.encode()
        src = Source(rec.event.topic, rec.partition, rec.offset)
        result = decode(src.topic, key, value, src, limits)
        if isinstance(result, Rejected):
            rejected[result.reason] += 1
            continue
        event = result.event
        assert not isinstance(event, Item | Erasure | Campaign)  # noqa: S101 - not read
        item = getattr(event, "item_id", None)
        if item is not None and item not in known_items:
            rejected["unknown_item"] += 1
            continue
        exp = users[event.user_id]
        exp.watermarks[f"{src.topic}:{src.partition}"] = src.offset
        exp.erased_at = erased_at.get(event.user_id)
        if exp.erased_at is None or event.ts > exp.erased_at:
            exp.events.append((event, src))
    return dict(users), rejected


def expected_recent(exp: Expected, recent_items: int) -> list[RecentEntry]:
    """The recent list the profile must hold: newest first by (ts, topic, partition, offset)."""
    entries = [
        RecentEntry(e.ts, topic_code(src.topic), src.partition, src.offset, item)
        for e, src in exp.events
        if (item := getattr(e, "item_id", None)) is not None
    ]
    return sorted(entries, key=lambda r: r.order, reverse=True)[:recent_items]


def expected_attributes(exp: Expected, max_attributes: int = MAX_ATTRIBUTES) -> dict[str, str]:
    """The attribute fields, merged field by field in log order with the per-user bound."""
    attrs: dict[str, str] = {}
    for e, _ in exp.events:
        if isinstance(e, UserAttributes):
            merge_attributes(attrs, attribute_fields(e), max_attributes)
    return attrs


def read_log(bootstrap: str, topic_names: Sequence[str], partitions: int) -> list[Delivered]:
    """Every record of these topics, from offset 0 to the current end: the source of truth.

    Reading the log (rather than trusting delivery reports) also counts the duplicates a
    producer's retries may have written, which the pipeline must then apply too.
    """
    return [
        Delivered(
            OutboundEvent(r.topic, r.key.decode("utf-8", "replace") if r.key else "",
                          json.loads(r.value) if r.value else {}),
            r.partition,
            r.offset,
        )
        for r in read_records(bootstrap, topic_names, partitions=partitions,
                              group_id="llmrec-verifier")
    ]


def missing_recommendations(
    expected: dict[str, Expected], published: Sequence[dict[str, Any]]
) -> list[tuple[str, str]]:
    """(user, event id) pairs that no published recommendation names as a driver."""
    seen = {(r["user_id"], e) for r in published for e in r["event_ids"]}
    return [
        (user, e.event_id)
        for user, exp in expected.items()
        for e, _ in exp.events
        if not isinstance(e, UserAttributes) and (user, e.event_id) not in seen
    ]
