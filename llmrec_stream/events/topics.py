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
FOLLOWS = "llmrec.follows"

#: Topics keyed by user id: co-partitioned, so one user's events meet on one worker.
USER_EVENT_TOPICS: tuple[str, ...] = (COMMENTS, CLICKS, PURCHASES, USERS)
#: What the user-events agent consumes: the user-event topics and follow/unfollow events
#: (keyed by the follower, co-partitioned too). Kept apart from ``USER_EVENT_TOPICS``, whose
#: name order numbers the recent items' topics (``profiles.store.TOPIC_CODES``).
PROFILE_TOPICS: tuple[str, ...] = (*USER_EVENT_TOPICS, FOLLOWS)


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
    TopicSpec(FOLLOWS),  # follow and unfollow events, keyed by the follower
)
