"""The Lua profile update against the real Redis: same maths as the numpy reference."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from llmrec_stream import explain
from llmrec_stream.devstack import DevStack
from llmrec_stream.events.models import Click, Comment, Purchase, Source, UserAttributes, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, contribution, reference_profile
from llmrec_stream.profiles.store import (
    Contribution,
    ProfileStore,
    VectorState,
    decode_aspects,
    decode_recent,
    decode_vector_state,
    profile_key,
    user_keys,
    vectors_key,
)
from llmrec_stream.publish import recommendation_record
from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.sentiment import ASPECTS
from tests.integration.module_fixtures import profile_store

DIM = 16
WEIGHTS = FusionWeights(half_life_s=60.0)


def _vec(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _events(
    rng: np.random.Generator, user: str, n: int
) -> list[tuple[UserEvent, Source, np.ndarray | None, np.ndarray | None]]:
    out: list[tuple[UserEvent, Source, np.ndarray | None, np.ndarray | None]] = []
    offsets = {"c": 0, "k": 0, "p": 0}
    for i in range(n):
        ts = 1_000_000 + int(rng.integers(0, 600_000))  # out of order on purpose
        kind = "ckp"[i % 3]
        offsets[kind] += 1
        item = f"i{int(rng.integers(0, 20))}"
        if kind == "c":
            rating = int(rng.integers(1, 6))
            event: UserEvent = Comment(f"e{i}", ts, user, "text", item, rating)
            out.append((event, Source("llmrec.comments", 1, offsets[kind]), _vec(rng), _vec(rng)))
        elif kind == "k":
            event = Click(f"e{i}", ts, user, item)
            out.append((event, Source("llmrec.clicks", 1, offsets[kind]), None, _vec(rng)))
        else:
            event = Purchase(f"e{i}", ts, user, item, round(float(rng.uniform(1, 99)), 2), 1)
            out.append((event, Source("llmrec.purchases", 1, offsets[kind]), None, _vec(rng)))
    return out


store = profile_store(DIM, WEIGHTS)


def _apply(
    store: ProfileStore, loop: asyncio.AbstractEventLoop, user: str, evs
) -> tuple[bool, ...]:  # type: ignore[no-untyped-def]
    contributions = [Contribution(e, s, *contribution(e, t, b, WEIGHTS)) for e, s, t, b in evs]
    return loop.run_until_complete(store.apply({user: contributions}))[0].applied


def _vectors(client: redis.Redis, user: str) -> VectorState:
    return decode_vector_state(client.get(vectors_key(user)) or b"", DIM)


def test_lua_matches_the_numpy_reference(store, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    s, loop = store
    evs = _events(np.random.default_rng(0), "alice", 30)
    for start in range(0, 30, 7):  # several micro-batches
        assert all(_apply(s, loop, "alice", evs[start : start + 7]))
    ref = reference_profile([(e, t, b) for e, _, t, b in evs], DIM, WEIGHTS)
    p = redis_client.hgetall(profile_key("alice"))
    v = _vectors(redis_client, "alice")
    # int16 storage: each of the 5 writes rounds a component by at most max|v| / 65534
    # (ref.*_error_bound sums that over events); 1e-5 covers float rounding as before
    text_tol = 1e-5 + 1.01 * ref.text_error_bound
    beh_tol = 1e-5 + 1.01 * ref.behaviour_error_bound
    np.testing.assert_allclose(v.text, ref.text, rtol=1e-4, atol=text_tol)
    np.testing.assert_allclose(v.behaviour, ref.behaviour, rtol=1e-4, atol=beh_tol)
    assert text_tol < 2e-3 and beh_tol < 2e-3  # the bound stays small for unit vectors
    assert v.t_ref == ref.t_ref
    assert float(p[b"spend"]) == pytest.approx(ref.spend)
    assert {k: int(p[f"n:{k}".encode()]) for k in "ckp"} == ref.counts
    last = loop.run_until_complete(s.apply({"alice": []}))  # an empty batch reads the state
    with_items = [(e.ts, src.topic, src.offset, e.item_id) for e, src, *_ in evs
                  if getattr(e, "item_id", None)]
    # newest first by event time (the events come out of order), bounded
    assert last[0].recent == tuple(i for *_, i in sorted(with_items, reverse=True))[:5]
    assert redis_client.zcard("u:{alice}:bought") == 4  # bounded


def test_events_at_or_below_the_watermark_are_skipped(store, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    s, loop = store
    evs = _events(np.random.default_rng(1), "bob", 12)
    _apply(s, loop, "bob", evs[:8])
    before = {k: redis_client.dump(k) for k in user_keys("bob") if redis_client.exists(k)}
    assert _apply(s, loop, "bob", evs[:8]) == (False,) * 8  # a replay of the same batch
    assert {k: redis_client.dump(k) for k in before} == before
    flags = _apply(s, loop, "bob", evs[4:])  # overlapping replay: only the new ones apply
    assert flags == (False,) * 4 + (True,) * 4


def test_attributes_are_stored_and_user_keys_share_one_slot(
    store, redis_client: redis.Redis
) -> None:  # type: ignore[no-untyped-def]
    s, loop = store
    attrs = UserAttributes("a1", 5, "carol", "25-34", "f", "high", {"tenure_days": 12.0})
    assert _apply(s, loop, "carol", [(attrs, Source("llmrec.users", 0, 9), None, None)]) == (True,)
    p = redis_client.hgetall(profile_key("carol"))
    assert p[b"a:age_band"] == b"25-34" and p[b"a:num.tenure_days"] == b"12.0"
    assert p[b"wm:llmrec.users:0"] == b"9"
    assert len({key_slot(k.encode()) for k in user_keys("carol")}) == 1


# --- property: any sequence of valid events applies without error and matches the maths ------

_ids = st.text(alphabet="abcdefghij0123456789-_:é中", min_size=1, max_size=12)
_vecs = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=DIM, max_size=DIM).map(
    lambda xs: np.asarray(xs, dtype=np.float32)
)


@st.composite
def _event(
    draw: st.DrawFn, n: int
) -> tuple[UserEvent, Source, np.ndarray | None, np.ndarray | None]:
    ts = draw(st.integers(0, 2**53 - 1))
    kind = draw(st.sampled_from("ckpu"))
    item = draw(_ids)
    if kind == "c":
        rating = draw(st.none() | st.integers(1, 5))
        event: UserEvent = Comment(f"e{n}", ts, "prop", "t", draw(st.none() | _ids), rating)
        return event, Source("llmrec.comments", 0, n), draw(_vecs), draw(_vecs)
    if kind == "k":
        return Click(f"e{n}", ts, "prop", item), Source("llmrec.clicks", 0, n), None, draw(_vecs)
    if kind == "p":
        amount = draw(st.floats(0, 1e6, allow_nan=False))
        event = Purchase(f"e{n}", ts, "prop", item, amount, draw(st.integers(1, 10_000)))
        return event, Source("llmrec.purchases", 0, n), None, draw(_vecs)
    numeric = draw(st.dictionaries(_ids, st.floats(-1e15, 1e15, allow_nan=False), max_size=3))
    event = UserAttributes(f"e{n}", ts, "prop", "18-24", "x", "low", numeric)
    return event, Source("llmrec.users", 0, n), None, None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_valid_event_sequence_applies_and_matches_the_reference(
    store, redis_client: redis.Redis, data: st.DataObject
) -> None:  # type: ignore[no-untyped-def]
    s, loop = store
    redis_client.delete(*user_keys("prop"))
    n = data.draw(st.integers(1, 12))
    evs = [data.draw(_event(i + 1)) for i in range(n)]
    assert all(_apply(s, loop, "prop", evs))
    weights = WEIGHTS
    ref = reference_profile([(e, t, b) for e, _, t, b in evs], DIM, weights)
    v = _vectors(redis_client, "prop")
    # one write: int16 rounding is within max|v| / 65534, far inside this tolerance
    for got, want in ((v.text, ref.text), (v.behaviour, ref.behaviour)):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, atol=1e-3 * scale, rtol=1e-3)
    assert _apply(s, loop, "prop", evs) == (False,) * n


def test_a_profile_in_the_float32_hash_layout_moves_to_the_int16_string(
    store, redis_client: redis.Redis
) -> None:  # type: ignore[no-untyped-def]
    s, loop = store
    rng = np.random.default_rng(3)
    old_t, old_b = _vec(rng), _vec(rng)
    redis_client.hset(
        profile_key("dave"),
        mapping={"tv": old_t.tobytes(), "bv": old_b.tobytes(), "wt": "1", "wb": "1",
                 "t_ref": "5000", "wm:llmrec.clicks:1": "3"},
    )
    item = _vec(rng)
    click = Click("d1", 5000, "dave", "i1")
    assert _apply(s, loop, "dave", [(click, Source("llmrec.clicks", 1, 4), None, item)]) == (True,)
    p = redis_client.hgetall(profile_key("dave"))
    assert not {b"tv", b"bv", b"wt", b"wb", b"t_ref"} & set(p)
    v = _vectors(redis_client, "dave")
    assert (v.t_ref, v.w_text, v.w_behaviour) == (5000, 1.0, 2.0)
    np.testing.assert_allclose(v.text, old_t, atol=1e-4)
    np.testing.assert_allclose(v.behaviour, old_b + WEIGHTS.click * item, atol=1e-4)


def realistic_profile(stack: DevStack) -> str:
    """Write a realistic profile (384-d vectors, 50 recent items, 20 bought, attributes, 4
    watermarks, an encoder id, the last comments' sketches, a top-20 cache with a reason per
    item); returns its user id."""
    dim, user = 384, "A2SUAM1J3GNN3B"  # an Amazon reviewer id
    rng = np.random.default_rng(7)
    weights = FusionWeights()

    def unit() -> np.ndarray:
        v = rng.standard_normal(dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def asin() -> str:
        return "B0" + "".join(rng.choice(list("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"), 8))

    evs: list[Contribution] = [
        Contribution(
            UserAttributes("u1", 1, user, "25-34", "f", "high", {"tenure_days": 412.0}),
            Source("llmrec.users", 3, 48_211),
        )
    ]
    offsets = {"c": 0, "k": 0, "p": 0}
    index = ExactIndex(dim)
    ts = 1_700_000_000_000
    for i in range(90):
        ts += int(rng.integers(1_000, 600_000))
        kind = "kkkkcckpp"[i % 9]
        offsets[kind] += 1
        event: UserEvent
        if kind == "c":
            event = Comment(f"c{i}", ts, user, "text", asin(), int(rng.integers(1, 6)))
            topic = "llmrec.comments"
        elif kind == "k":
            event = Click(f"k{i}", ts, user, asin())
            topic = "llmrec.clicks"
        else:
            event = Purchase(f"p{i}", ts, user, asin(), round(float(rng.uniform(1, 99)), 2), 1)
            topic = "llmrec.purchases"
        text = unit() if kind == "c" else None
        item = unit()
        index.upsert([event.item_id], item[None, :])
        tc, bc = contribution(event, text, item, weights)
        sk = b"" if text is None else explain.sketch(text)
        # a comment also moves all four aspect scores (sentiment.py), the most they can take
        aspects = () if text is None else tuple(
            round(float(rng.uniform(-1, 1)), 3) for _ in ASPECTS)
        evs.append(Contribution(event, Source(topic, 3, 1_000_000 + offsets[kind]), tc, bc, sk,
                                aspects))
    loop = asyncio.new_event_loop()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        # an encoder id as long as a real one ("enc" in the hash)
        s = ProfileStore(client, dim, weights, recent_items=50, seen_items=500,
                         encoder_id="all-MiniLM-L6-v2:384:int8:3f9a2c")
        for start in range(0, len(evs), 8):
            [state] = loop.run_until_complete(s.apply({user: evs[start : start + 8]}))
        top = [(asin(), float(rng.uniform(-1, 1))) for _ in range(20)]
        # candidates near the profile, as a ranker finds them: each close to some of its events
        query = state.behaviour / np.linalg.norm(state.behaviour)
        for item_id, _ in top:
            near = query + 0.8 * unit()
            index.upsert([item_id], (near / np.linalg.norm(near))[None, :].astype(np.float32))
        reasons = explain.explain(state, [i for i, _ in top], index, weights.half_life_s)
        assert all(reasons)
        record = recommendation_record(user, top, "fused-v1(mix_text=0.5)", ["p88", "p89"], ts,
                                       reasons)
        loop.run_until_complete(s.cache_recommendations({user: record}))
        pulled = loop.run_until_complete(s.recommendations(user))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert pulled is not None and pulled["items"] == [i for i, _ in top]
    return user


def test_a_realistic_profile_takes_at_most_4_kb_of_redis(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    """384-d vectors, 50 recent items, 20 bought, attributes, 4 watermarks, a top-20 cache."""
    dim, user = 384, realistic_profile(stack)
    raw_state = redis_client.get(vectors_key(user))
    assert len(decode_recent(raw_state, dim)) == 50
    assert not redis_client.exists(f"u:{{{user}}}:recent")  # the recent items live in :v
    assert redis_client.zcard(f"u:{{{user}}}:bought") == 20
    usage = {k: redis_client.memory_usage(k, samples=0) for k in user_keys(user)}
    del usage[f"u:{{{user}}}:recent"]  # the LIST of earlier versions: moved into :v
    assert all(usage.values()), usage  # every key exists
    total = sum(u for u in usage.values() if u)
    print(f"\nbytes per user with aspects: {total} {usage}")
    assert len(decode_aspects(raw_state, dim)) == len(ASPECTS)
    assert total <= 4096, usage
    # the hash stays in Redis's compact encoding (a hashtable would cost ~4x)
    assert redis_client.object("encoding", profile_key(user)) in (b"ziplist", b"listpack")
