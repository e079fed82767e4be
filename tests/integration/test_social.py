"""Social signals (issue 14, item 2) through the real broker and Redis.

Follow and unfollow events go to ``llmrec.follows`` keyed by the follower, are read back from
the log and handed to the pipeline as the user-events agent hands them. The followees'
profiles are read from Redis at ranking time. A "twin" user with the same own events and no
follows is the control: once a followee's influence is gone, the follower's list (items and
scores) equals the twin's.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft7Validator

from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.kafka_log import read_records
from llmrec_stream.pipeline import BatchOutcome, Pipeline
from llmrec_stream.profiles import recs
from llmrec_stream.profiles.store import profile_key, recs_key, vectors_key
from llmrec_stream.redis_conn import sync_client
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent, envelope
from tests.integration.inprocess import InProcess
from tests.integration.live import LiveWorker

FOLLOWS = "llmrec.follows"  # spelled out: the topic the producers write to
ALL = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS, FOLLOWS]
SHOES = [f"social-shoe-{n}" for n in range(3)]
KETTLES = [f"social-kettle-{n}" for n in range(3)]
TITLES = {
    "social-shoe-0": "Lightweight trail running shoes",
    "social-shoe-1": "Cushioned road running sneakers",
    "social-shoe-2": "Breathable marathon racing shoes",
    "social-kettle-0": "Stainless steel electric kettle",
    "social-kettle-1": "Glass tea kettle with temperature control",
    "social-kettle-2": "Stovetop whistling kettle",
}
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "recommendation.json")
                    .read_text(encoding="utf-8"))


class Social(InProcess):
    def __init__(self, stack: DevStack, encoder: TextEncoder) -> None:
        super().__init__(stack, encoder, "social-test-encoder")
        self.now = int(time.time() * 1000)

    def pipeline(self, **overrides: Any) -> contextlib.AbstractContextManager[Pipeline]:
        """A top-3 pipeline for the block, closed after it."""
        return self.open_pipeline(top_k=3, **overrides)

    def process(self, p: Pipeline, user: str, events: list[OutboundEvent]) -> BatchOutcome:
        """Produce the user's events, then hand the log's records of them to the pipeline."""
        self.produce(events)
        ids = {e.value["event_id"] for e in events}
        mine = [r for r in self.records(ALL, user)
                if r.value is not None and json.loads(r.value)["event_id"] in ids]
        assert len(mine) == len(events)
        outcome: BatchOutcome = self.run(p.process_events(mine))
        return outcome

    def same_click(
        self, p: Pipeline, fan: str, twin: str, item: str, ts: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The follower's and the twin's lists after each clicks ``item`` at ``ts``."""
        mine = _list(self.process(p, fan, [_click(fan, item, ts)]), fan)
        theirs = _list(self.process(p, twin, [_click(twin, item, ts)]), twin)
        return mine, theirs


def _harness(stack: DevStack, text_encoder: TextEncoder) -> Iterator[Social]:
    h = Social(stack, text_encoder)
    h.ingest_items(OutboundEvent(topics.ITEMS, i, {**envelope(i, 1), "item_id": i, "title": t,
                                                   "category": i.split("-")[1]})
                   for i, t in TITLES.items())
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def social(
    stack: DevStack, redis_client: redis.Redis, text_encoder: TextEncoder
) -> Iterator[Social]:
    """On an emptied database (``redis_client`` flushes it first): the catalog may hold
    another test's encoder identity."""
    yield from _harness(stack, text_encoder)


def follows_key(user: str) -> str:
    """The follow set's key, spelled out: in the user's own hash slot."""
    return f"u:{{{user}}}:f"


def _uid(tag: str) -> str:
    return f"social-{tag}-{uuid.uuid4().hex[:6]}"


def _lover(user: str, items: list[str], text: str, ts: int) -> list[OutboundEvent]:
    """A user who clicked every item of one category and wrote about it."""
    clicks = [OutboundEvent(topics.CLICKS, user, {**envelope(f"{user}-k{n}", ts + n),
                                                  "user_id": user, "item_id": i})
              for n, i in enumerate(items)]
    return [*clicks, OutboundEvent(topics.COMMENTS, user, {**envelope(f"{user}-c", ts + 9),
                                                           "user_id": user, "text": text})]


def _follow(user: str, followee: str, ts: int, action: str = "follow") -> OutboundEvent:
    return OutboundEvent(FOLLOWS, user, {
        **envelope(f"{user}-{action}-{followee}-{ts}", ts), "user_id": user,
        "followee_id": followee, "action": action})


def _click(user: str, item: str, ts: int) -> OutboundEvent:
    return OutboundEvent(topics.CLICKS, user, {**envelope(f"{user}-k-{ts}", ts),
                                               "user_id": user, "item_id": item})


def _list(outcome: BatchOutcome, user: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(outcome.published[user])
    errors = [e.message for e in Draft7Validator(SCHEMA).iter_errors(record)]
    assert not errors, errors
    return record


def _shoe_lovers(h: Social, p: Pipeline, n: int) -> list[str]:
    users = [_uid("runner") for _ in range(n)]
    for u in users:
        assert h.process(p, u, _lover(u, SHOES, "I love running shoes and sneakers",
                                      h.now - 120_000)).applied == 4
    return users


def test_a_user_with_no_history_gets_the_category_of_the_users_they_follow(
    social: Social, redis_client: redis.Redis
) -> None:
    _no_history_follower(social, redis_client)


def test_followees_are_read_across_the_slots_of_a_redis_cluster(
    tmp_path_factory: pytest.TempPathFactory, text_encoder: TextEncoder
) -> None:
    """The followees' state strings live in other slots (other primaries): still one
    pipelined round trip of per-key GETs, never a multi-key command (CROSSSLOT)."""
    with DevStack(workdir=tmp_path_factory.mktemp("social-cluster"), redis_cluster=True) as stack:
        client = sync_client(stack.redis_url)
        try:
            for h in _harness(stack, text_encoder):
                _no_history_follower(h, client)
        finally:
            client.close()


def _no_history_follower(h: Social, redis_client: redis.Redis) -> None:
    with h.pipeline() as p:
        runners = _shoe_lovers(h, p, 2)
        tea = _uid("tea")
        assert h.process(p, tea, _lover(tea, KETTLES, "A kettle for my tea, every morning",
                                        h.now - 120_000)).applied == 4
        fan, other, alone = _uid("fan"), _uid("other"), _uid("alone")
        got = h.process(p, fan, [_follow(fan, r, h.now - 60_000 + n)
                                 for n, r in enumerate(runners)])
        assert got.applied == 2
        record = _list(got, fan)
        assert set(record["items"]) == set(SHOES), record
        assert record["reasons"] == [None, None, None]  # none of their own events to cite
        assert set(redis_client.zrange(follows_key(fan), 0, -1)) == {r.encode() for r in runners}
        # the category is the followees', not the encoder's favourite
        got = h.process(p, other, [_follow(other, tea, h.now - 60_000)])
        assert set(_list(got, other)["items"]) == set(KETTLES)
        # without follows a user with no history gets no list at all
        lone = h.process(p, alone, [OutboundEvent(topics.USERS, alone, {
            **envelope(f"{alone}-u", h.now - 60_000), "user_id": alone, "age_band": "25-34"})])
        assert lone.applied == 1 and alone not in lone.published


def test_an_unfollow_removes_the_influence_and_a_replayed_follow_is_not_applied_again(
    social: Social, redis_client: redis.Redis
) -> None:
    h = social
    with h.pipeline() as p:
        runners = _shoe_lovers(h, p, 2)
        fan, twin = _uid("fan"), _uid("twin")
        follows = [_follow(fan, r, h.now - 60_000 + n) for n, r in enumerate(runners)]
        assert set(_list(h.process(p, fan, follows), fan)["items"]) == set(SHOES)
        # own history, same for both: the follower's list still differs from the twin's
        t1 = h.now - 50_000
        mine, theirs = h.same_click(p, fan, twin, KETTLES[0], t1)
        assert mine["scores"] != theirs["scores"]
        unfollows = [_follow(fan, r, h.now - 40_000 + n, "unfollow")
                     for n, r in enumerate(runners)]
        gone = h.process(p, fan, unfollows)
        assert gone.applied == 2
        assert not redis_client.exists(follows_key(fan))
        t2 = h.now - 30_000
        mine, theirs = h.same_click(p, fan, twin, KETTLES[1], t2)
        assert (mine["items"], mine["scores"]) == (theirs["items"], theirs["scores"])
        before = redis_client.hgetall(profile_key(fan))
    # another deployment re-reads the follower's records from offset 0: nothing is applied
    # again (the follows before the unfollows would otherwise bring the runners back)
    with h.pipeline() as again:
        replay = h.run(again.process_events(h.records(ALL, fan)))
        assert replay.applied == 0 and replay.skipped == 6
        assert not redis_client.exists(follows_key(fan))
        assert redis_client.hgetall(profile_key(fan)) == before


def test_the_follow_set_is_bounded_the_oldest_follow_goes(
    social: Social, redis_client: redis.Redis
) -> None:
    h = social
    with h.pipeline(max_follows=2) as p:
        fan = _uid("fan")
        # in one batch, and the newest follow first in the log: the bound is by follow time
        got = h.process(p, fan, [_follow(fan, "c", h.now - 10_000),
                                 _follow(fan, "a", h.now - 30_000),
                                 _follow(fan, "b", h.now - 20_000)])
        assert got.applied == 3
        assert redis_client.zrange(follows_key(fan), 0, -1) == [b"b", b"c"]


def test_erasure_of_a_followee_removes_their_influence(
    social: Social, redis_client: redis.Redis
) -> None:
    h = social
    with h.pipeline() as p:
        (runner,) = _shoe_lovers(h, p, 1)
        fan, twin = _uid("fan"), _uid("twin")
        assert set(_list(h.process(p, fan, [_follow(fan, runner, h.now - 60_000)]),
                         fan)["items"]) == set(SHOES)
        h.produce([OutboundEvent(topics.ERASE, runner, {
            **envelope(f"erase-{runner}", h.now - 45_000), "user_id": runner})])
        erased = h.run(p.process_erasures(h.records([topics.ERASE], runner)))
        assert erased.applied == 1
        assert not redis_client.exists(vectors_key(runner))
        t1 = h.now - 30_000
        mine, theirs = h.same_click(p, fan, twin, KETTLES[0], t1)
        assert (mine["items"], mine["scores"]) == (theirs["items"], theirs["scores"])
        # the follow set itself is the follower's data: it stays, and costs nothing
        assert redis_client.zrange(follows_key(fan), 0, -1) == [runner.encode()]


def test_a_live_worker_reads_llmrec_follows(
    stack: DevStack, redis_client: redis.Redis, encoder_dir: Path, tmp_path: Path
) -> None:
    """The wiring: the user-events agent of a Faust worker consumes llmrec.follows.

    ``redis_client`` empties Redis first: the other tests' catalog names another encoder id.
    """
    live = LiveWorker(stack, encoder_dir, tmp_path, env={"LLMREC_TOP_K": "3"}).start()
    try:
        now = int(time.time() * 1000)
        live.publish([OutboundEvent(topics.ITEMS, i, {**envelope(i, 1), "item_id": i,
                                                      "title": t, "category": i.split("-")[1]})
                      for i, t in TITLES.items()])
        live.wait(lambda: all(live.redis.hexists(VECTORS, i) for i in TITLES),
                  120, "catalog")
        runner, fan = _uid("runner"), _uid("fan")
        live.publish(_lover(runner, SHOES, "I love running shoes and sneakers", now - 60_000))
        live.wait(lambda: live.redis.exists(recs_key(runner)) == 1, 120, "the runner's list")
        live.publish([_follow(fan, runner, now - 30_000)])
        live.wait(lambda: live.redis.exists(recs_key(fan)) == 1, 120, "the follower's list")
        cached = recs.decode(fan, bytes(live.redis.get(recs_key(fan))))  # type: ignore[arg-type]
        assert set(cached["items"]) == set(SHOES)
        # a fresh consumer group reads llmrec.follows from offset 0 into an emptied Redis:
        # every follow in the log is applied once, the earlier tests' ones included
        follows = [json.loads(r.value) for r in read_records(
            stack.kafka_bootstrap, [FOLLOWS], partitions=stack.partitions) if r.value]
        expected = sum(1 for f in follows if f["action"] == "follow")
        series = 'llmrec_social_follow_events_total{action="follow"}'
        live.wait(lambda: live.metrics().get(series) == expected, 60, "the follow count")
    finally:
        assert live.stop() == 0, live.proc.log_tail()
