"""Typed events: what the rest of the library works with once a payload passed validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from: the coordinates the offset watermark and the DLQ need."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Comment:
    event_id: str
    ts: int
    user_id: str
    text: str
    item_id: str | None = None
    rating: int | None = None


@dataclass(frozen=True, slots=True)
class Click:
    event_id: str
    ts: int
    user_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class Purchase:
    event_id: str
    ts: int
    user_id: str
    item_id: str
    amount: float
    quantity: int


@dataclass(frozen=True, slots=True)
class UserAttributes:
    event_id: str
    ts: int
    user_id: str
    age_band: str = "unknown"
    gender: str = "unknown"
    spend_level: str = "unknown"
    numeric: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Item:
    event_id: str
    ts: int
    item_id: str
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    category: str | None = None

    def text(self) -> str:
        """The text the encoder sees for an item: title, description and tags."""
        parts = [self.title, self.description, ", ".join(self.tags)]
        return ". ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Erasure:
    """Right to erasure: forget everything stored for this user."""

    event_id: str
    ts: int
    user_id: str


@dataclass(frozen=True, slots=True)
class Campaign:
    """A sponsored-item campaign (``llmrec.sponsored``, keyed and compacted by its id)."""

    event_id: str
    ts: int
    campaign_id: str
    item_id: str
    bid: float
    """Charged per impression."""
    budget: float
    """Total spend allowed over [start_ts, end_ts), paced evenly over that time."""
    start_ts: int
    end_ts: int
    categories: tuple[str, ...] = ()
    """Targeting: only users whose organic top-k holds an item of one of these categories."""
    query: str | None = None
    """Targeting: only users whose profile is close enough to this text (encoded)."""


@dataclass(frozen=True, slots=True)
class Follow:
    """``user_id`` follows (``follow`` False: unfollows) ``followee_id`` (``llmrec.follows``)."""

    event_id: str
    ts: int
    user_id: str
    followee_id: str
    follow: bool = True


UserEvent: TypeAlias = Comment | Click | Purchase | UserAttributes | Follow
Event: TypeAlias = UserEvent | Item | Erasure | Campaign


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated event with the coordinates of the record that carried it."""

    event: Event
    source: Source
