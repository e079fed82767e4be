"""Kafka topic names and the layout the embedded stack and the docs create."""

from __future__ import annotations

from dataclasses import dataclass

COMMENTS = "llmrec.comments"
CLICKS = "llmrec.clicks"
PURCHASES = "llmrec.purchases"
ITEMS = "llmrec.items"
USERS = "llmrec.users"
ERASE = "llmrec.users.erase"
RECOMMENDATIONS = "llmrec.recommendations"
DLQ = "llmrec.dlq"
MODELS = "llmrec.models"
SPONSORED = "llmrec.sponsored"

#: Topics keyed by user id: co-partitioned, so one user's events meet on one worker.
USER_EVENT_TOPICS: tuple[str, ...] = (COMMENTS, CLICKS, PURCHASES, USERS)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    compacted: bool = False


#: Every topic the product uses; compacted ones keep the latest value per key.
ALL_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(COMMENTS),
    TopicSpec(CLICKS),
    TopicSpec(PURCHASES),
    TopicSpec(ITEMS, compacted=True),
    TopicSpec(USERS, compacted=True),
    TopicSpec(ERASE),
    TopicSpec(RECOMMENDATIONS, compacted=True),
    TopicSpec(DLQ),
    TopicSpec(MODELS),
    TopicSpec(SPONSORED, compacted=True),  # campaigns by id: the latest version of each
)
