"""What every replay source hands to the producer: keyed, JSON-ready events in three groups.

Sources (the synthetic generator, the Amazon and atomic loaders) only build plain values; the
producer decides how to publish them. Keeping them in one small shape lets tests, benchmarks and
the CLI treat a synthetic world and a real data set the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Version stamped into every event value; bump together with the event schemas.
SCHEMA_VERSION = 1
#: Upper bound on a comment's text, in UTF-8 bytes (the event contract).
MAX_TEXT_BYTES = 8192


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One record to publish: the topic, the partitioning key and the JSON value."""

    topic: str
    key: str
    value: dict[str, Any]

    def encode(self) -> tuple[bytes, bytes]:
        """Return (key, value) as bytes; compact JSON so equal events give equal bytes."""
        body = json.dumps(self.value, ensure_ascii=False, separators=(",", ":"))
        return self.key.encode("utf-8"), body.encode("utf-8")


@dataclass(slots=True)
class Replay:
    """A replayable world: the catalog and user attributes first, then user events in time order.

    The catalog and attributes go to compacted topics and must land before the events that
    refer to them, which is why they are kept apart from ``events``.
    """

    items: list[OutboundEvent]
    users: list[OutboundEvent]
    events: list[OutboundEvent]

    def __iter__(self) -> Iterator[OutboundEvent]:
        """Yield everything in publishing order: items, users, then the events."""
        yield from self.items
        yield from self.users
        yield from self.events

    def describe(self) -> str:
        """One line for logs and the CLI: sizes, per-topic counts and the time span."""
        per_topic = Counter(ev.topic for ev in self.events)
        topics = ", ".join(f"{topic} {n}" for topic, n in sorted(per_topic.items()))
        span = "empty"
        if self.events:
            first, last = self.events[0].value["ts"], self.events[-1].value["ts"]
            span = f"{_iso(first)} .. {_iso(last)}"
        return (
            f"{len(self.items)} items, {len(self.users)} user attributes, "
            f"{len(self.events)} events ({topics or 'none'}); time {span}"
        )


def envelope(event_id: str, ts: int) -> dict[str, Any]:
    """Start an event value with the fields every event carries, in a fixed key order."""
    return {"schema_version": SCHEMA_VERSION, "event_id": event_id, "ts": ts}


def clip_utf8(text: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Cut text to at most max_bytes of UTF-8 without leaving half a character at the end."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
