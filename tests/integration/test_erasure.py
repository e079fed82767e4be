"""Right to erasure against batches in flight and replays (issue 12, item 5).

Through the real broker and Redis: records are produced, read back from the log and handed
to the pipeline as the worker's agents hand them; recommendations and tombstones go to
``llmrec.recommendations`` and are read back from there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.profiles.store import bought_key, profile_key, recs_key, vectors_key
from llmrec_stream.sources.base import OutboundEvent, envelope
from tests.integration.inprocess import InProcess

EVENT_TOPICS = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS]
#: What an erased user's profile hash may still hold: offsets, the erasure time, the encoder.
MARKER = (b"x", b"wm:", b"xo:", b"enc")


class Harness(InProcess):
    def __init__(self, stack: DevStack, encoder: TextEncoder) -> None:
        super().__init__(stack, encoder, "erasure-test-encoder")

    def published(self, user: str) -> list[bytes | None]:
        """Values on llmrec.recommendations for the user, in log order (None: a tombstone)."""
        self.sink.prod.flush(10)
        return [r.value for r in self.records([topics.RECOMMENDATIONS], user)]


@pytest.fixture
def harness(
    stack: DevStack, redis_client: redis.Redis, text_encoder: TextEncoder
) -> Iterator[Harness]:
    h = Harness(stack, text_encoder)
    h.ingest_items(OutboundEvent(topics.ITEMS, f"erase-item-{n}",
                                 {**envelope(f"erase-item-{n}", 1), "item_id": f"erase-item-{n}",
                                  "title": f"Steel kettle {n}"}) for n in range(3))
    try:
        yield h
    finally:
        h.close()


def _events(user: str, ts: int, tag: str) -> list[OutboundEvent]:
    return [
        OutboundEvent(topics.CLICKS, user, {**envelope(f"{tag}-k", ts), "user_id": user,
                                             "item_id": "erase-item-0"}),
        OutboundEvent(topics.COMMENTS, user, {**envelope(f"{tag}-c", ts + 1), "user_id": user,
                                               "text": "my private words about kettles",
                                               "item_id": "erase-item-1", "rating": 5}),
        OutboundEvent(topics.PURCHASES, user, {**envelope(f"{tag}-p", ts + 2), "user_id": user,
                                                "item_id": "erase-item-2", "amount": 19.9,
                                                "quantity": 1}),
        OutboundEvent(topics.USERS, user, {**envelope(f"{tag}-u", ts + 3), "user_id": user,
                                            "age_band": "25-34", "numeric": {"tenure": 3}}),
    ]


def _erasure(user: str, ts: int) -> OutboundEvent:
    return OutboundEvent(topics.ERASE, user, {**envelope(f"erase-{user}", ts), "user_id": user})


def _user_with_history(h: Harness, tag: str) -> tuple[str, int]:
    """A new user whose four events of a minute ago are in the log; and the time now."""
    user = f"erase-{tag}-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    h.produce(_events(user, now - 60_000, "before"))
    return user, now


def _only_the_marker(client: redis.Redis, user: str) -> None:
    assert not any(client.exists(k) for k in (vectors_key(user), bought_key(user),
                                              recs_key(user)))
    fields = client.hgetall(profile_key(user))
    assert b"x" in fields
    personal = [f for f in fields if not f.startswith(MARKER)]
    assert not personal, personal


def test_a_batch_in_flight_during_the_erasure_neither_recreates_nor_publishes(
    harness: Harness, redis_client: redis.Redis
) -> None:
    h = harness
    user, now = _user_with_history(h, "inflight")
    h.produce([_erasure(user, now)])
    with h.open_pipeline() as p:
        # the agent has decoded and encoded this batch when the erasure lands
        prepared = h.run(p.prepare_events(h.records(EVENT_TOPICS, user)))
        erased = h.run(p.process_erasures(h.records([topics.ERASE], user)))
        assert erased.applied == 1
        outcome = h.run(p.apply_events(prepared))
        assert outcome.applied == 0 and outcome.skipped == 4
        assert user not in outcome.published
        _only_the_marker(redis_client, user)
        assert h.published(user) == [None]  # the tombstone, and nothing after it
        # an event after the erasure starts a fresh profile
        h.produce(_events(user, now + 1000, "after")[:1])
        fresh = h.run(p.process_events(h.records([topics.CLICKS], user)))
        assert fresh.applied == 1 and user in fresh.published
        assert redis_client.hget(profile_key(user), "n:k") == b"1"
        assert redis_client.hget(profile_key(user), "n:c") is None
        assert h.published(user)[0] is None and h.published(user)[1] is not None


def test_a_replay_from_offset_0_does_not_bring_an_erased_user_back(
    harness: Harness, redis_client: redis.Redis
) -> None:
    h = harness
    user, now = _user_with_history(h, "replay")
    with h.open_pipeline() as p:
        live = h.run(p.process_events(h.records(EVENT_TOPICS, user)))
        assert live.applied == 4 and user in live.published
        h.produce([_erasure(user, now)])
        assert h.run(p.process_erasures(h.records([topics.ERASE], user))).applied == 1
    _only_the_marker(redis_client, user)
    marker = redis_client.hgetall(profile_key(user))
    # another deployment (a new consumer group) re-reads every topic from offset 0
    with h.open_pipeline() as again:
        replay = h.run(again.process_events(h.records(EVENT_TOPICS, user)))
        assert replay.applied == 0 and user not in replay.published
        repeat = h.run(again.process_erasures(h.records([topics.ERASE], user)))
        assert repeat.applied == 0 and repeat.skipped == 1  # applied before: a no-op
    _only_the_marker(redis_client, user)
    assert redis_client.hgetall(profile_key(user)) == marker
    values = h.published(user)
    assert values[0] is not None and values[1:] == [None, None]  # nothing after the tombstone
