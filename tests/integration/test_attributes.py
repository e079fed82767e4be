"""User attributes (``llmrec.users``) against the real Redis: merged field by field, bounded.

Issue 12: numeric attributes added up to 32 new hash keys per event, forever, and a partial
update reset the categorical fields. Also the encoder identity a profile carries.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.models import Click, Source, UserAttributes
from llmrec_stream.profiles.fusion import (
    MAX_ATTRIBUTES,
    FusionWeights,
    attribute_fields,
    merge_attributes,
)
from llmrec_stream.profiles.store import (
    Contribution,
    EncoderMismatch,
    ProfileStore,
    profile_key,
    user_keys,
    vectors_key,
)
from tests.integration.test_profiles_redis import realistic_profile

DIM = 16


@pytest.fixture
def loop_client(stack: DevStack, redis_client: redis.Redis) -> Iterator[tuple[Any, Any]]:
    loop = asyncio.new_event_loop()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        yield loop, client
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def _attrs(n: int, user: str, **fields: Any) -> Contribution:
    return Contribution(UserAttributes(f"u{n}", 1000 + n, user, **fields),
                        Source(topics.USERS, 0, n))


def _attributes(client: redis.Redis, user: str) -> dict[str, str]:
    return {k.decode()[2:]: v.decode() for k, v in client.hgetall(profile_key(user)).items()
            if k.startswith(b"a:")}


def test_a_partial_update_changes_only_the_fields_it_carries(
    loop_client: tuple[Any, Any], redis_client: redis.Redis
) -> None:
    loop, client = loop_client
    store = ProfileStore(client, DIM, FusionWeights())
    first = _attrs(1, "pat", age_band="25-34", gender="f", spend_level="low",
                   numeric={"tenure": 3.0, "orders": 1.0})
    # as the codec decodes {"spend_level": "high", "numeric": {"orders": 2}}: the rest unknown
    second = _attrs(2, "pat", spend_level="high", numeric={"orders": 2.0})
    loop.run_until_complete(store.apply({"pat": [first]}))
    loop.run_until_complete(store.apply({"pat": [second]}))
    assert _attributes(redis_client, "pat") == {
        "age_band": "25-34", "gender": "f", "spend_level": "high",
        "num.tenure": "3.0", "num.orders": "2.0",
    }


def test_new_attribute_keys_past_the_bound_are_dropped_and_counted(
    loop_client: tuple[Any, Any], redis_client: redis.Redis
) -> None:
    loop, client = loop_client
    store = ProfileStore(client, DIM, FusionWeights(), max_attributes=4)
    batch = [
        _attrs(1, "bo", age_band="18-24", numeric={"b": 1.0, "a": 2.0}),
        _attrs(2, "bo", numeric={"d": 3.0, "c": 4.0, "a": 5.0}),  # only "c" fits, in name order
        _attrs(3, "bo", numeric={"x" * 30: 1.0}),  # "a:num." + 30 bytes: too long
    ]
    (state,) = loop.run_until_complete(store.apply({"bo": batch}))
    assert state.attributes_dropped == 2
    want = {"age_band": "18-24", "num.a": "5.0", "num.b": "1.0", "num.c": "4.0"}
    assert _attributes(redis_client, "bo") == want
    assert redis_client.hget(profile_key("bo"), "a_dropped") == b"2"
    # the verifier's model of the merge says the same
    ref: dict[str, str] = {}
    dropped = sum(merge_attributes(ref, attribute_fields(c.event), 4)  # type: ignore[arg-type]
                  for c in batch)
    assert (ref, dropped) == (want, 2)


def test_a_realistic_profile_stays_within_4_kb_under_attribute_churn(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    """The 4 KB profile of test_profiles_redis, then 300 updates of ever-new random names."""
    rng = random.Random(12)
    user = realistic_profile(stack)

    def name() -> str:
        return "".join(rng.choices(string.ascii_lowercase + "_", k=rng.randint(4, 30)))

    churn = [
        _attrs(n, user, age_band=rng.choice(["18-24", "55+", "unknown"]),
               numeric={name(): rng.uniform(-1e6, 1e6) for _ in range(rng.randint(1, 32))})
        for n in range(60_000, 60_300)
    ]
    loop = asyncio.new_event_loop()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        store = ProfileStore(client, 384, FusionWeights(), recent_items=50, seen_items=500)
        for start in range(0, len(churn), 10):
            loop.run_until_complete(store.apply({user: churn[start : start + 10]}))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert len(_attributes(redis_client, user)) == MAX_ATTRIBUTES
    usage = {k: redis_client.memory_usage(k, samples=0) for k in user_keys(user)}
    total = sum(u for u in usage.values() if u)
    print(f"\nbytes per user after attribute churn: {total} {usage}")
    assert total <= 4096, usage
    assert redis_client.object("encoding", profile_key(user)) in (b"ziplist", b"listpack")


def test_a_profile_of_another_encoder_is_refused_before_its_vectors_are_read(
    loop_client: tuple[Any, Any], redis_client: redis.Redis
) -> None:
    loop, client = loop_client
    item = np.ones(DIM, dtype=np.float32)
    click = Contribution(Click("k1", 5000, "eve", "i1"), Source(topics.CLICKS, 0, 1), None, item)
    old = ProfileStore(client, DIM, FusionWeights(), encoder_id="minilm-384")
    loop.run_until_complete(old.apply({"eve": [click]}))
    assert redis_client.hget(profile_key("eve"), "enc") == b"minilm-384"
    stored = redis_client.get(vectors_key("eve"))
    # another model with another dimension: without the check, struct.unpack would fail in Lua
    other = ProfileStore(client, 768, FusionWeights(), encoder_id="mpnet-768")
    again = Contribution(Click("k2", 6000, "eve", "i2"), Source(topics.CLICKS, 0, 2), None,
                         np.ones(768, dtype=np.float32))
    with pytest.raises(EncoderMismatch) as caught:
        loop.run_until_complete(other.apply({"eve": [again]}))
    assert "minilm-384" in str(caught.value) and "mpnet-768" in str(caught.value)
    assert (caught.value.stored, caught.value.worker) == ("minilm-384", "mpnet-768")
    assert redis_client.get(vectors_key("eve")) == stored  # nothing applied
    assert redis_client.hget(profile_key("eve"), "wm:llmrec.clicks:0") == b"1"
    # the same encoder goes on; a store without an id checks nothing and changes no id
    same = Contribution(Click("k2", 6000, "eve", "i2"), Source(topics.CLICKS, 0, 2), None, item)
    assert loop.run_until_complete(old.apply({"eve": [same]}))[0].applied == (True,)
    unchecked = ProfileStore(client, DIM, FusionWeights())
    loop.run_until_complete(unchecked.apply({"eve": [same]}))
    assert redis_client.hget(profile_key("eve"), "enc") == b"minilm-384"
