"""A profile does not depend on the order its events are applied in (issue 19).

One user's events live on three topics; a worker interleaves them by fetch timing, batch
boundaries and restarts. The same multi-topic log applied with other batch boundaries and
other topic interleavings must leave Redis identical key by key: recent items (in event-time
order), bought items and their times, counters, spend, watermarks, attributes, and the vectors
within int16 rounding.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis

from llmrec_stream.events import topics
from llmrec_stream.events.models import Click, Comment, Purchase, Source, UserAttributes, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, contribution
from llmrec_stream.profiles.store import (
    Contribution,
    ProfileState,
    ProfileStore,
    decode_recent,
    profile_key,
    recent_key,
    vectors_key,
)
from llmrec_stream.verify import Expected, expected_recent
from tests.integration.module_fixtures import profile_store
from tests.integration.profile_state import differences, profile_snapshot

DIM = 16
WEIGHTS = FusionWeights(half_life_s=3600.0)
RECENT = 12
SEEN = 6
T0 = 1_700_000_000_000
PARTITIONS = 2

Log = list[tuple[UserEvent, Source, np.ndarray | None, np.ndarray | None]]


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _log(seed: int, users: int = 12, per_user: int = 40) -> Log:
    """A multi-topic log in production order: offsets follow it per (topic, partition); event
    times run roughly forward with jitter (late events), and some repeat exactly."""
    rng = np.random.default_rng(seed)
    items = {f"i{n}": _unit(rng) for n in range(15)}
    offsets: dict[tuple[str, int], int] = {}
    out: Log = []
    names = [f"user-{n:02d}" for n in range(users)]
    clock = T0
    for n in range(users * per_user):
        user = names[int(rng.integers(users))]
        part = int(user[-2:]) % PARTITIONS
        clock += int(rng.integers(0, 20_000))
        ts = clock - int(rng.integers(0, 400_000)) if rng.random() < 0.3 else clock
        if rng.random() < 0.1 and out:  # the same millisecond as an earlier event
            ts = out[int(rng.integers(len(out)))][0].ts
        item = f"i{int(rng.integers(len(items)))}"
        kind = rng.choice(["c", "k", "k", "p", "u"], p=[0.25, 0.25, 0.2, 0.25, 0.05])
        topic = {"c": topics.COMMENTS, "k": topics.CLICKS, "p": topics.PURCHASES,
                 "u": topics.USERS}[str(kind)]
        offset = offsets.get((topic, part), 0)
        offsets[(topic, part)] = offset + 1
        src = Source(topic, part, offset)
        event: UserEvent
        if kind == "c":
            event = Comment(f"e{n}", ts, user, "text", item, int(rng.integers(1, 6)))
            out.append((event, src, _unit(rng), items[item]))
        elif kind in ("k", "p"):
            if kind == "k":
                event = Click(f"e{n}", ts, user, item)
            else:
                event = Purchase(f"e{n}", ts, user, item, float(rng.integers(1, 9999)) / 100, 1)
            out.append((event, src, None, items[item]))
        else:
            numeric = {f"n{int(rng.integers(4))}": float(rng.integers(100))}
            event = UserAttributes(f"e{n}", ts, user, "25-34", "f", "mid", numeric)
            out.append((event, src, None, None))
    return out


def _interleave(log: Log, rng: random.Random, topic_order: list[str] | None) -> Log:
    """Another consumption order: each (topic, partition) stays in offset order (Kafka's only
    guarantee), the partitions are merged in ``topic_order`` or at random."""
    queues: dict[tuple[str, int], list[Any]] = {}
    for rec in log:
        queues.setdefault((rec[1].topic, rec[1].partition), []).append(rec)
    if topic_order is not None:
        return [r for t in topic_order for (qt, _), q in sorted(queues.items()) if qt == t
                for r in q]
    out: Log = []
    heads = {k: 0 for k in queues}
    while heads:
        key = rng.choice(sorted(heads))
        take = rng.randint(1, 6)  # a fetch returns a run of one partition
        q = queues[key]
        out += q[heads[key] : heads[key] + take]
        heads[key] += take
        if heads[key] >= len(q):
            del heads[key]
    return out


def _apply(store: ProfileStore, loop: asyncio.AbstractEventLoop, log: Log,
           rng: random.Random) -> None:
    """In micro-batches of random size, each one call per user, as the pipeline batches."""
    start = 0
    while start < len(log):
        size = rng.randint(1, 60)
        batch: dict[str, list[Contribution]] = {}
        for e, src, t, b in log[start : start + size]:
            batch.setdefault(e.user_id, []).append(
                Contribution(e, src, *contribution(e, t, b, WEIGHTS))
            )
        loop.run_until_complete(store.apply(batch))
        start += size


store = profile_store(DIM, WEIGHTS, recent_items=RECENT, seen_items=SEEN)
#: One batch through the store, run to completion: the users' states after it.
Apply = Callable[[dict[str, list[Contribution]]], list[ProfileState]]


@pytest.fixture
def apply(store: tuple[ProfileStore, Any]) -> Apply:
    s, loop = store
    return lambda batch: loop.run_until_complete(s.apply(batch))


def test_other_batch_boundaries_and_interleavings_give_identical_redis_state(
    store: tuple[ProfileStore, Any], redis_client: redis.Redis
) -> None:
    s, loop = store
    log = _log(seed=19)
    rng = random.Random(19)
    orders = [
        ("production order", log),
        ("topic by topic", _interleave(log, rng, sorted(topics.USER_EVENT_TOPICS))),
        ("topics reversed", _interleave(log, rng, sorted(topics.USER_EVENT_TOPICS)[::-1])),
        ("random fetches 1", _interleave(log, rng, None)),
        ("random fetches 2", _interleave(log, rng, None)),
    ]
    snapshots = []
    for _, order in orders:
        redis_client.flushdb()
        _apply(s, loop, order, rng)
        snapshots.append(profile_snapshot(redis_client, DIM))
    first = snapshots[0]
    assert len([k for k in first if k.endswith(b":v")]) == 12
    for (name, _), snap in zip(orders[1:], snapshots[1:], strict=True):
        diffs = differences(first, snap)
        assert not diffs, (name, len(diffs), diffs[:4])
    # and what they all hold is the verifier's expectation: newest first by event time
    users: dict[str, Expected] = {}
    for e, src, *_ in log:
        users.setdefault(e.user_id, Expected()).events.append((e, src))
    for user, exp in users.items():
        assert first[vectors_key(user).encode()][1] == expected_recent(exp, RECENT), user


def test_an_event_older_than_a_full_recent_list_does_not_enter(
    apply: Apply, redis_client: redis.Redis
) -> None:
    rng = np.random.default_rng(1)
    clicks = [
        Contribution(Click(f"k{n}", T0 + 1000 * n, "ann", f"i{n}"),
                     Source(topics.CLICKS, 0, n), None, _unit(rng))
        for n in range(RECENT)
    ]
    apply({"ann": clicks})
    late = Contribution(Click("late", T0 - 1, "ann", "old"), Source(topics.CLICKS, 0, 99),
                        None, _unit(rng))
    tie = Contribution(Purchase("tie", T0 + 1000, "ann", "tied", 1.0, 1),
                       Source(topics.PURCHASES, 0, 0), None, _unit(rng))
    (state,) = apply({"ann": [late, tie]})
    assert state.applied == (True, True)
    assert "old" not in state.recent and len(state.recent) == RECENT
    # equal times: llmrec.purchases sorts after llmrec.clicks, so the purchase is the newer
    assert state.recent[-3:] == ("i2", "tied", "i1")
    # the late click still counts and decays into the vectors: only the list is bounded
    assert redis_client.hget(profile_key("ann"), "n:k") == str(RECENT + 1).encode()


def test_bought_times_and_last_ts_keep_the_newest_whatever_the_order(
    apply: Apply, redis_client: redis.Redis
) -> None:
    rng = np.random.default_rng(2)

    def buy(n: int, ts: int, item: str) -> Contribution:
        return Contribution(Purchase(f"p{n}", ts, "bo", item, 2.5, 1),
                            Source(topics.PURCHASES, 0, n), None, _unit(rng))

    apply({"bo": [buy(0, T0 + 500, "a"), buy(1, T0 + 900, "b")]})
    apply({"bo": [buy(2, T0 + 100, "a"), buy(3, T0 + 50, "c")]})
    assert redis_client.zrange("u:{bo}:bought", 0, -1, withscores=True) == [
        (b"c", T0 + 50.0), (b"a", T0 + 500.0), (b"b", T0 + 900.0)
    ]
    assert redis_client.hget(profile_key("bo"), "last_ts") == str(T0 + 900).encode()


def test_a_recent_list_in_the_old_list_layout_moves_into_the_vector_string(
    apply: Apply, redis_client: redis.Redis
) -> None:
    rng = np.random.default_rng(3)
    # an earlier version's profile: items LPUSHed newest first, last_ts in the hash
    redis_client.rpush(recent_key("cy"), "new", "mid", "old")
    redis_client.hset(profile_key("cy"), mapping={"last_ts": T0, "wm:llmrec.clicks:0": 7})
    later = Contribution(Click("k8", T0 + 5, "cy", "later"), Source(topics.CLICKS, 0, 8),
                         None, _unit(rng))
    earlier = Contribution(Click("k9", T0 - 5, "cy", "earlier"), Source(topics.CLICKS, 0, 9),
                           None, _unit(rng))
    (state,) = apply({"cy": [later, earlier]})
    assert state.recent == ("later", "new", "mid", "old", "earlier")
    assert not redis_client.exists(recent_key("cy"))
    raw: Any = redis_client.get(vectors_key("cy"))
    held = decode_recent(raw, DIM)
    assert [r.item_id for r in held] == list(state.recent)
    # a read alone (an empty batch) of a profile in the old layout moves it too
    redis_client.rpush(recent_key("dee"), "x", "y")
    (read,) = apply({"dee": []})
    assert read.recent == ("x", "y") and not redis_client.exists(recent_key("dee"))


def test_recent_entries_keep_large_times_partitions_and_offsets_exactly(
    apply: Apply, redis_client: redis.Redis
) -> None:
    rng = np.random.default_rng(4)
    top = 2**53 - 1  # the schema's largest ts: Lua numbers hold it exactly
    events = [
        (top, topics.CLICKS, 40, 2**40, "far"),
        (top, topics.CLICKS, 31, 2**40, "p31"),
        (top, topics.CLICKS, 30, 7, "p30"),
        (0, topics.PURCHASES, 0, 0, "epoch"),
    ]
    batch = [
        Contribution(Click(f"k{n}", ts, "zed", item), Source(topic, part, off), None, _unit(rng))
        for n, (ts, topic, part, off, item) in enumerate(events)
    ]
    (state,) = apply({"zed": batch})
    assert state.recent == ("far", "p31", "p30", "epoch")
    raw: Any = redis_client.get(vectors_key("zed"))
    held = decode_recent(raw, DIM)
    assert [(r.ts, r.partition, r.offset, r.item_id) for r in held] == [
        (ts, part, off, item) for ts, _, part, off, item in events
    ]
