"""Counting online hits of a shadow and the live model on the real Redis (issue 14, item 4).

The per-user script and the counters are under test here, so the rankers return the lists
they are told; `test_shadow.py` runs real models end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest
import redis

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.models import Click, Source
from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.profiles.store import Contribution, ProfileState, ProfileStore, shadow_key
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.online_stats import PairedHits
from llmrec_stream.ranking.protocol import Ranked
from llmrec_stream.ranking.shadow import ShadowRun, online_stats
from llmrec_stream.redis_conn import async_client
from llmrec_stream.retrieval.protocol import ItemIndex

K = 5



class _Lists:
    """A ranker that returns the lists it is told (the counting is under test, not ranking)."""

    def __init__(self, version: str, lists: dict[str, list[str]]) -> None:
        self._version, self.lists = version, lists

    @property
    def version(self) -> str:
        return self._version

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        return [(self._version, [(i, 1.0) for i in self.lists[s.user_id]][:k])
                if s.user_id in self.lists else None for s in states]


class _Broken(_Lists):
    def __init__(self) -> None:
        super().__init__("broken", {})

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        raise RuntimeError("a graph that fails at run time")


def _batch(clicks: dict[str, list[str]], ts: int, applied: bool = True) -> tuple[
        list[ProfileState], dict[str, list[Contribution]]]:
    states, batch = [], {}
    for user, items in clicks.items():
        batch[user] = [Contribution(Click(f"{user}-{ts}-{n}", ts + n, user, i),
                                    Source(topics.CLICKS, 0, ts + n)) for n, i in enumerate(items)]
        states.append(ProfileState(user, (applied,) * len(items), np.zeros(8, np.float32),
                                   np.zeros(8, np.float32), frozenset()))
    return states, batch


def test_each_event_is_scored_once_against_both_previous_lists(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    asyncio.run(_scenario(stack.redis_url))


def test_the_counting_runs_on_a_redis_cluster(
    stack: DevStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Per-user lists in each user's slot, a shadow's counters in the registry's: pipelined
    single-slot script calls, never a multi-key command across slots (CROSSSLOT)."""
    with DevStack(kafka_bootstrap=stack.kafka_bootstrap, redis_cluster=True,
                  workdir=tmp_path_factory.mktemp("shadow-cluster")) as cluster:
        asyncio.run(_scenario(cluster.redis_url))


async def _scenario(url: str) -> None:
    client = async_client(Settings(redis_url=url).redis)
    metrics = Metrics()
    run = ShadowRun(client, 8, FusedProfileRanker(), metrics, ttl_s=60)
    live = _Lists("L1", {"a": ["i1", "i2"], "b": ["i1"]})
    run.ranker = _Lists("S1", {"a": ["i2", "i3"]})  # no list for b: "no signal" is a miss

    async def record(clicks: dict[str, list[str]], ts: int,
                     applied: bool = True) -> dict[str, PairedHits]:
        states, batch = _batch(clicks, ts, applied)
        ranked = live.rank(states, K, None)  # type: ignore[arg-type]
        return await run.record(states, states, ranked, live.version, batch, K,
                                None)  # type: ignore[arg-type]

    try:
        assert await record({"a": ["i0"], "b": ["i0"]}, 1000) == {}  # no previous lists
        # a: i1 only live had, i3 only the shadow, i9 neither; b: i1 live had
        got = await record({"a": ["i1", "i3", "i9"], "b": ["i1"]}, 2000)
        assert got == {"L1": PairedHits(events=4, live=2, shadow=1, both=0)}
        # the same batch again (a retry after an outage): nothing counts twice
        assert await record({"a": ["i1", "i3", "i9"], "b": ["i1"]}, 2000) == {}
        # events the profile refused (a replay) neither count nor move the lists
        assert await record({"a": ["i2"]}, 3000, applied=False) == {}
        assert await record({"a": ["i2"]}, 3000) == {"L1": PairedHits(1, 1, 1, 1)}
        # an event older than the last batch's (another topic's partition lagged) still counts
        assert await record({"a": ["i1"]}, 2500) == {"L1": PairedHits(1, 1, 0, 0)}
        # a new shadow starts from its own lists, not the previous shadow's
        run.ranker = _Lists("S2", {"a": ["i4"]})
        assert await record({"a": ["i2"]}, 4000) == {}
        assert await record({"a": ["i4"]}, 5000) == {"L1": PairedHits(1, 0, 1, 0)}

        k, by_live = await online_stats(client, "S1")
        assert k == K and by_live == {"L1": PairedHits(6, 4, 2, 1)}
        assert (await online_stats(client, "S2"))[1] == {"L1": PairedHits(1, 0, 1, 0)}
        sample = metrics.registry.get_sample_value
        assert sample("llmrec_shadow_events_total", {"model_version": "L1",
                                                     "role": "live"}) == 7
        assert sample("llmrec_shadow_hits_total", {"model_version": "S1",
                                                   "role": "shadow"}) == 2
        assert 0 < await client.ttl(shadow_key("a")) <= 60

        # a shadow that fails to rank is dropped: the live path goes on
        run.ranker = _Broken()
        assert await record({"b": ["i1"]}, 6000) == {}
        assert run.ranker is None

        # erasure deletes the lists; a batch in flight from before it does not bring
        # them back (the profile's erasure marker refuses it)
        store = ProfileStore(client, 8, FusionWeights())
        assert await store.erase("a", 9000, Source(topics.ERASE, 0, 1))
        assert not await client.exists(shadow_key("a"))
        assert await record({"a": ["i4"]}, 8000) == {}
        assert not await client.exists(shadow_key("a"))
    finally:
        await client.aclose()
