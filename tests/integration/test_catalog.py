"""The catalog mirror against the real Redis: what reaches each worker's index, and when."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import redis
import redis.asyncio as aioredis
import redis.exceptions

from llmrec_stream.devstack import DevStack
from llmrec_stream.events.models import Item
from llmrec_stream.retrieval.catalog import UPSERT_SLICE, Catalog
from llmrec_stream.retrieval.exact import ExactIndex

DIM = 8


class RecordingIndex(ExactIndex):
    """An exact index that notes each upsert: its ids and how far a ticker had counted."""

    def __init__(self, ticks: list[int]) -> None:
        super().__init__(DIM)
        self.ticks = ticks
        self.calls: list[tuple[list[str], int]] = []

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        self.calls.append((list(ids), len(self.ticks)))
        super().upsert(ids, vectors)


def _items(n: int, seed: int) -> tuple[list[Item], npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [Item(f"e{i}", 0, f"item-{i}", f"title {i}") for i in range(n)], vectors


async def _two_workers(url: str, n: int) -> tuple[RecordingIndex, RecordingIndex, list[int]]:
    """Worker A publishes ``n`` items; both mirror the change log while a ticker runs."""
    ticks: list[int] = []
    a_client, b_client = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    index_a, index_b = RecordingIndex(ticks), RecordingIndex(ticks)
    a, b = Catalog(a_client, index_a), Catalog(b_client, index_b)
    await a.bootstrap()
    await b.bootstrap()
    items, vectors = _items(n, seed=1)
    await a.publish(items, vectors)
    index_a.calls.clear()

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(ticker())
    try:
        assert await a.refresh() == n  # its own items come back through the log
        assert await b.refresh() == n
    finally:
        ticking.cancel()
        await a_client.aclose()
        await b_client.aclose()
    for ids, vec in zip(*_items(n, seed=1), strict=True):
        np.testing.assert_array_equal(index_b.vector(ids.item_id), vec)
    return index_a, index_b, ticks


def test_the_publishing_worker_does_not_insert_its_own_items_twice(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    index_a, index_b, _ = asyncio.run(_two_workers(stack.redis_url, 300))
    assert index_a.calls == []  # an HNSW graph would have got 300 new rows and tombstones
    assert sum(len(ids) for ids, _ in index_b.calls) == 300


def test_a_large_mirror_goes_in_slices_with_the_event_loop_free_between_them(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    n = 2 * UPSERT_SLICE + 7
    _, index_b, _ = asyncio.run(_two_workers(stack.redis_url, n))
    assert [len(ids) for ids, _ in index_b.calls] == [UPSERT_SLICE, UPSERT_SLICE, 7]
    seen = [at for _, at in index_b.calls]
    assert seen[0] < seen[1] < seen[2]  # the ticker ran between every two slices


async def _published(
    url: str, batches: list[tuple[list[Item], npt.NDArray[np.float32]]]
) -> RecordingIndex:
    """One worker's index after it published these batches in turn."""
    client = aioredis.Redis.from_url(url)
    index = RecordingIndex([])
    catalog = Catalog(client, index)
    try:
        for items, vectors in batches:
            await catalog.publish(items, vectors)
        return index
    finally:
        await client.aclose()


def test_a_changed_item_is_inserted_again(stack: DevStack, redis_client: redis.Redis) -> None:
    items, vectors = _items(3, seed=2)
    changed = vectors.copy()
    changed[1] = -changed[1]  # item-1's text changed, the others did not
    index = asyncio.run(_published(stack.redis_url, [(items, vectors), (items, changed)]))
    assert [ids for ids, _ in index.calls] == [["item-0", "item-1", "item-2"], ["item-1"]]
    np.testing.assert_array_equal(index.vector("item-1"), changed[1])


def test_an_id_twice_in_one_load_keeps_its_last_vector(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    items, vectors = _items(2, seed=3)
    twice = ([items[0], items[0]], np.stack([-vectors[0], vectors[0]]))
    index = asyncio.run(_published(stack.redis_url, [(items, vectors), twice]))
    np.testing.assert_array_equal(index.vector("item-0"), vectors[0])


class DropsNextLoad(aioredis.Redis):
    """A real client whose next HMGET fails as a connection lost mid-call does: Redis went
    away between a worker's read of the change log and its load of the vectors."""

    drop_next_load = False

    def hmget(self, name: Any, keys: Any, *args: Any) -> Any:
        if self.drop_next_load:
            self.drop_next_load = False
            return _lost()
        return super().hmget(name, keys, *args)


async def _lost() -> None:
    raise redis.exceptions.ConnectionError("Connection closed by server (injected)")


async def _refresh_across_an_outage(url: str, n: int) -> tuple[ExactIndex, list[Item]]:
    a_client, b_client = aioredis.Redis.from_url(url), DropsNextLoad.from_url(url)
    assert isinstance(b_client, DropsNextLoad)
    index_b = ExactIndex(DIM)
    a, b = Catalog(a_client, ExactIndex(DIM)), Catalog(b_client, index_b)
    try:
        await b.bootstrap()
        items, vectors = _items(n, seed=4)
        await a.publish(items, vectors)  # worker A, while B's Redis calls fail
        b_client.drop_next_load = True
        with pytest.raises(redis.exceptions.ConnectionError):
            await b.refresh()  # the log was read, the load was not
        assert len(index_b) == 0
        await b.refresh()  # Redis is back: the next tick of the agent's timer
        return index_b, items
    finally:
        await a_client.aclose()
        await b_client.aclose()


def test_items_published_while_a_refresh_fails_reach_the_index_afterwards(
    stack: DevStack, redis_client: redis.Redis
) -> None:
    index_b, items = asyncio.run(_refresh_across_an_outage(stack.redis_url, 40))
    missing = [it.item_id for it in items if it.item_id not in index_b]
    assert missing == [], f"{len(missing)} of {len(items)} items never reached the mirror"
