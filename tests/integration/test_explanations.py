"""Reasons (issue 14, item 3) through the real broker, a live worker and the real Redis.

Every reason must name an event that really is in the log, at the coordinates it gives, and
is that user's; a user whose one strong signal is a comment gets that comment as the reason.
"""

from __future__ import annotations

import json
import random
from typing import Any

import fastjsonschema

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.codec import SCHEMAS_DIR
from llmrec_stream.kafka_log import read_records
from llmrec_stream.profiles import recs
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay, comment_text_for
from llmrec_stream.waiting import wait_until
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import catalog_worker, own_stack, replay_world

validate_rec = fastjsonschema.compile(json.loads((SCHEMAS_DIR / "recommendation.json").read_text()))
KIND_TOPIC = {"click": topics.CLICKS, "purchase": topics.PURCHASES, "comment": topics.COMMENTS}


stack = own_stack()
world = replay_world(n_items=120, n_users=10, n_events=50, seed=14)
worker = catalog_worker("explain")


def _event(topic: str, user: str, n: int, **fields: Any) -> OutboundEvent:
    value = {**envelope(f"{user}-{topic}-{n}", 0), "user_id": user, **fields}
    return OutboundEvent(topic, user, value)


def _log(stack: DevStack) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Every user event in the log by its coordinates."""
    out: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in read_records(stack.kafka_bootstrap, list(KIND_TOPIC.values()),
                          partitions=stack.partitions, group_id="explain-test"):
        if r.value is not None:
            out[(r.topic, r.partition, r.offset)] = json.loads(r.value)
    return out


def _settled(watcher: OutputWatcher, user: str, event_id: str) -> dict[str, Any] | None:
    """The user's latest record once it was driven by ``event_id`` (their last event)."""
    rec = watcher.snapshot().latest.get(user)
    return rec if rec is not None and event_id in rec["event_ids"] else None


def test_every_reason_names_a_real_event_of_that_user(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay, stack: DevStack
) -> None:
    rng = random.Random(5)
    items = [e.key for e in world.items]
    users = [f"why-{i}" for i in range(4)]
    last: dict[str, str] = {}
    for u in users:
        cat = rng.choice(world.categories)
        evs = [
            _event(topics.CLICKS, u, 0, item_id=rng.choice(items)),
            _event(topics.COMMENTS, u, 1, text=comment_text_for(cat, rng)),
            _event(topics.PURCHASES, u, 2, item_id=rng.choice(items), amount=9.5, quantity=1),
            _event(topics.COMMENTS, u, 3, text=comment_text_for(cat, rng),
                   item_id=rng.choice(items), rating=5),
            _event(topics.CLICKS, u, 4, item_id=rng.choice(items)),
        ]
        worker.publish(evs)
        last[u] = evs[-1].value["event_id"]
    wait_until(lambda: all(_settled(watcher, u, last[u]) for u in users), 30, "records")
    log = _log(stack)
    cited = set()
    for u in users:
        rec = _settled(watcher, u, last[u])
        assert rec is not None
        validate_rec(rec)
        assert rec["schema_version"] == 2
        assert len(rec["reasons"]) == len(rec["items"]) == 20
        for reason in rec["reasons"]:
            assert reason is not None, rec
            event = log[(reason["topic"], reason["partition"], reason["offset"])]
            assert event["user_id"] == u
            assert KIND_TOPIC[reason["kind"]] == reason["topic"]
            assert reason.get("item_id") == event.get("item_id")
            assert "text" not in reason
            cited.add(reason["kind"])
        # what a pull returns carries the same reasons
        raw = worker.redis.get(f"u:{{{u}}}:recs")
        assert isinstance(raw, bytes)
        cached = recs.decode(u, raw)
        if cached["published_ts"] == rec["published_ts"]:
            assert cached["reasons"] == rec["reasons"]
            assert cached["placements"] == rec["placements"] == [None] * 20
    assert len(cited) >= 2, cited  # not one kind of event for everything


def _reasons_in(
    rec: dict[str, Any], world: SyntheticReplay, category: str
) -> list[tuple[int, dict[str, Any]]]:
    """(rank, reason) of the listed items of ``category``; the list holds at least one."""
    listed = [n for n, i in enumerate(rec["items"]) if world.item_category[i] == category]
    assert listed, [world.item_category[i] for i in rec["items"]]
    return [(n, rec["reasons"][n]) for n in listed]


def test_a_user_with_one_strong_comment_is_told_it_is_that_comment(
    worker: LiveWorker, watcher: OutputWatcher, world: SyntheticReplay, stack: DevStack
) -> None:
    rng = random.Random(8)
    liked, other = world.categories[0], world.categories[1]
    other_items = [i for i, c in world.item_category.items() if c == other]
    user = "why-strong-comment"
    comment = _event(topics.COMMENTS, user, 0, text=comment_text_for(liked, rng))
    click = _event(topics.CLICKS, user, 1, item_id=other_items[0])
    worker.publish([comment, click])
    wait_until(lambda: _settled(watcher, user, click.value["event_id"]), 30, "the record")
    rec = _settled(watcher, user, click.value["event_id"])
    assert rec is not None
    validate_rec(rec)
    where = {
        (r["topic"], r["partition"], r["offset"]): r for r in rec["reasons"] if r is not None
    }
    log = _log(stack)
    by_id = {v["event_id"]: k for k, v in log.items()}
    comment_at = by_id[comment.value["event_id"]]
    for n, r in _reasons_in(rec, world, liked):
        assert (r["topic"], r["partition"], r["offset"]) == comment_at, (n, r)
        assert r["kind"] == "comment" and "item_id" not in r
    # and the click explains what it is closest to: the reasons tell the two apart
    click_at = by_id[click.value["event_id"]]
    for n, r in _reasons_in(rec, world, other):
        assert (r["topic"], r["partition"], r["offset"]) == click_at, (n, r)
        assert r["kind"] == "click" and r["item_id"] == other_items[0]
    assert set(where) == {comment_at, click_at}
