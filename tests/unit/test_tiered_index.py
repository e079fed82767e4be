"""TieredIndex: exact below the threshold, HNSW from it on, kept current item by item."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("faiss", reason="the ANN side needs faiss-cpu")

from llmrec_stream.bench.vectors import clustered_vectors  # noqa: E402
from llmrec_stream.config import Settings  # noqa: E402
from llmrec_stream.retrieval import tiered  # noqa: E402
from llmrec_stream.retrieval.ann import AnnIndex  # noqa: E402
from llmrec_stream.retrieval.exact import ExactIndex  # noqa: E402
from llmrec_stream.retrieval.protocol import ItemIndex  # noqa: E402
from llmrec_stream.retrieval.rows import RowMap  # noqa: E402
from llmrec_stream.retrieval.tiered import HnswParams, TieredIndex  # noqa: E402

DIM = 32
N = 3_000


@pytest.fixture(scope="module")
def world() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    items, centers = clustered_vectors(N, DIM, clusters=40, seed=5)
    queries, _ = clustered_vectors(40, DIM, centers=centers, seed=6)
    moved, _ = clustered_vectors(N, DIM, centers=centers, seed=7)  # new vectors for updates
    return [f"i{j}" for j in range(N)], items, queries, moved


def _recall(got: list[list[tuple[str, float]]], truth: list[list[tuple[str, float]]]) -> float:
    pairs = zip(got, truth, strict=True)
    return float(np.mean([len({i for i, _ in g} & {i for i, _ in t}) / len(t) for g, t in pairs]))


def test_satisfies_item_index_protocol() -> None:
    index: ItemIndex = TieredIndex(DIM, ann_min_items=10)
    assert index.dim == DIM and len(index) == 0 and "x" not in index
    assert index.search(np.zeros((2, DIM), np.float32), 5) == [[], []]


def test_stays_exact_below_the_threshold_and_switches_at_it(world) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, moved = world
    index = TieredIndex(DIM, ann_min_items=1_000)
    index.upsert(ids[:600], items[:600])
    index.upsert(ids[:100], items[:100])  # replacements do not grow the catalog
    assert index.kind == "exact" and len(index) == 600
    index.upsert(ids[600:999], items[600:999])
    assert index.kind == "exact"
    # the batch that reaches 1,000, with replacements of earlier items folded in
    index.upsert(ids[999:1_200] + ids[:50], np.concatenate([items[999:1_200], moved[:50]]))
    assert index.wait_ready(60) and index.build_error is None
    assert index.kind == "ann" and len(index) == 1_200 and ids[5] in index
    assert isinstance(index.active, AnnIndex) and index.active.tombstones == 0
    np.testing.assert_allclose(index.vector(ids[7]), moved[7], atol=1e-6)
    np.testing.assert_allclose(index.vector(ids[700]), items[700], atol=1e-6)
    exact = ExactIndex(DIM)
    exact.upsert(ids[:1_200], items[:1_200])
    exact.upsert(ids[:50], moved[:50])
    assert _recall(index.search(queries, 10), exact.search(queries, 10)) >= 0.95
    # a start-up load past the threshold builds the graph directly (nothing to answer from)
    loaded = TieredIndex(DIM, ann_min_items=1_000)
    loaded.upsert(ids[:1_200], items[:1_200])
    assert loaded.kind == "ann" and len(loaded) == 1_200 and not loaded.building


def test_adds_and_replacements_after_the_switch_match_exact(world) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, moved = world
    index = TieredIndex(DIM, ann_min_items=1_000, hnsw=HnswParams(max_stale=0.1))
    exact = ExactIndex(DIM)
    for start in range(0, N, 250):  # item events arrive in micro-batches
        index.upsert(ids[start : start + 250], items[start : start + 250])
        exact.upsert(ids[start : start + 250], items[start : start + 250])
    assert index.wait_ready(60)
    assert index.kind == "ann" and len(index) == N and index.builds == 1
    ann = index.active
    assert isinstance(ann, AnnIndex)
    assert _recall(index.search(queries, 20), exact.search(queries, 20)) >= 0.95
    # replace 200 items (one batch at a time, as updates of the catalog arrive)
    changed = list(range(0, 2_000, 10))
    for at in changed:
        index.upsert([ids[at]], moved[at][None])
        exact.upsert([ids[at]], moved[at][None])
    assert len(index) == N
    assert ann.tombstones <= 0.1 * N
    assert index.builds == 1 and index.active is ann  # 200 stale rows < 10 % of 3,000: not yet
    for at in changed[:20]:
        np.testing.assert_allclose(index.vector(ids[at]), moved[at], atol=1e-6)
    got, truth = index.search(queries, 20), exact.search(queries, 20)
    assert _recall(got, truth) >= 0.95
    for hits in got:  # a replaced item answers once, with its new score
        names = [i for i, _ in hits]
        assert len(names) == len(set(names))
    # an item put exactly on a query answers for it, and not from its old place
    index.upsert([ids[3]], queries[0][None])
    top = index.search(queries[:1], 1)[0][0]
    assert top[0] == ids[3] and top[1] == pytest.approx(float(queries[0] @ queries[0]), abs=1e-5)
    # more replacements pass the 10 % bound: the graph is rebuilt without tombstones
    for at in range(1, 2_000, 10):
        index.upsert([ids[at]], moved[at][None])
        exact.upsert([ids[at]], moved[at][None])
    assert index.wait_ready(60) and index.builds >= 2
    assert isinstance(index.active, AnnIndex) and index.active.tombstones <= 0.1 * N
    exact.upsert([ids[3]], queries[0][None])
    assert _recall(index.search(queries, 20), exact.search(queries, 20)) >= 0.95
    np.testing.assert_allclose(index.vector(ids[1]), moved[1], atol=1e-6)


def test_exclusion_is_honoured_on_both_sides(world) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, _ = world
    for threshold in (10_000, 100):  # exact, then ann
        index = TieredIndex(DIM, ann_min_items=threshold)
        index.upsert(ids[:1_000], items[:1_000])
        assert index.kind == ("exact" if threshold > 1_000 else "ann")
        plain = index.search(queries[:2], 10)
        banned = {i for i, _ in plain[0][:5]} | {"unknown"}
        got = index.search(queries[:2], 10, exclude=[banned])
        assert len(got[0]) == 10 and not banned & {i for i, _ in got[0]}
        assert got[1] == plain[1]
        assert [i for i, _ in got[0][:5]] == [i for i, _ in plain[0][5:10]]


def test_from_settings() -> None:
    s = Settings(ann_min_items=7, ann_connectivity=16, ann_expansion_search=64, ann_max_stale=0.5)
    index = TieredIndex.from_settings(8, s.retrieval)
    assert index.ann_min_items == 7
    assert index.hnsw == HnswParams(connectivity=16, expansion_search=64, max_stale=0.5)
    assert Settings().retrieval.ann_min_items == 50_000


def test_row_map_places_in_place_and_moves_to_new_rows() -> None:
    rows = RowMap()
    assert [rows.place(i) for i in "abca"] == [0, 1, 2, 0]
    assert rows.move("b") == 3 and rows.dead == 1 and len(rows) == 3 and rows.size == 4
    assert rows.ids() == ["a", "c", "b"] and rows.alive().tolist() == [True, False, True, True]
    assert rows.rows_of(["b", "zz", "a"]) == [3, 0] and rows.id_at(1) == "b"
    for j in range(3_000):  # growth past the initial capacity
        rows.place(f"x{j}")
    assert rows.size == 3_004 and rows.alive()[-1]


def _hold_builds(index: TieredIndex, monkeypatch: pytest.MonkeyPatch) -> HeldBuilds:
    held = HeldBuilds(index._build)
    monkeypatch.setattr(index, "_build", held)
    return held


class HeldBuilds:
    """Stands in for the builder's body: each build waits until the test lets it go, so the
    test knows it is in the middle of one (a deterministic point, no sleeps)."""

    def __init__(self, build: Callable[[list[str], np.ndarray], None]) -> None:
        self._build = build
        self.started = threading.Semaphore(0)
        self._go = threading.Semaphore(0)

    def __call__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.started.release()
        assert self._go.acquire(timeout=60)
        self._build(ids, vectors)

    def wait_started(self) -> None:
        assert self.started.acquire(timeout=60)

    def release(self) -> None:
        self._go.release()


def test_switch_answers_from_exact_during_the_build_and_keeps_its_upserts(  # type: ignore[no-untyped-def]
    world, monkeypatch
) -> None:
    ids, items, queries, moved = world
    monkeypatch.setattr(tiered, "_CHUNK", 700)  # the snapshot is read in several chunks
    index = TieredIndex(DIM, ann_min_items=2_000)
    held = _hold_builds(index, monkeypatch)
    exact = ExactIndex(DIM)
    for sl in (slice(0, 1_500), slice(1_500, 2_100)):
        index.upsert(ids[sl], items[sl])
        exact.upsert(ids[sl], items[sl])
    held.wait_started()
    assert index.building and index.kind == "exact" and len(index) == 2_100
    assert not index.wait_ready(0.01)
    assert index.search(queries, 10) == exact.search(queries, 10)
    # during the build: new items, and replacements of items the snapshot holds
    index.upsert(ids[2_100:2_500], items[2_100:2_500])
    exact.upsert(ids[2_100:2_500], items[2_100:2_500])
    for at in range(0, 300, 3):
        index.upsert([ids[at]], moved[at][None])
        exact.upsert([ids[at]], moved[at][None])
    index.upsert([ids[4]], queries[0][None])  # right on a query
    exact.upsert([ids[4]], queries[0][None])
    assert index.kind == "exact" and len(index) == 2_500  # visible at once, from the exact side
    assert index.search(queries, 10) == exact.search(queries, 10)
    np.testing.assert_allclose(index.vector(ids[3]), moved[3], atol=1e-6)
    # and more while the builder replays those 501 logged rows (without the lock, as they
    # are many): they go to the next catch-up round
    replay, late = index._replay, slice(2_500, 2_550)

    def replay_while_upserting(graph: AnnIndex, batches: list[tuple[list[str], Any]]) -> None:
        if ids[late.start] not in index:
            index.upsert(ids[late], items[late])
        replay(graph, batches)

    monkeypatch.setattr(index, "_replay", replay_while_upserting)
    exact.upsert(ids[late], items[late])
    held.release()
    assert index.wait_ready(60) and index.build_error is None and not index.building
    # swapped: every upsert made during the build is in the graph
    assert index.kind == "ann" and index.builds == 1 and len(index) == 2_550
    assert ids[2_549] in index and ids[2_550] not in index
    np.testing.assert_allclose(index.vector(ids[3]), moved[3], atol=1e-6)
    np.testing.assert_allclose(index.vector(ids[2_300]), items[2_300], atol=1e-6)
    assert index.search(queries[:1], 1)[0][0][0] == ids[4]
    got, truth = index.search(queries, 20), exact.search(queries, 20)
    assert _recall(got, truth) >= 0.95
    for hits in got:  # a replaced item answers once
        assert len(hits) == len({i for i, _ in hits}) == 20


def test_searches_go_on_while_faiss_builds(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The real build, not held: faiss releases the GIL, so this thread keeps searching."""
    ids, items, queries, _ = world
    inserting = threading.Event()  # set while faiss is inside a graph insertion
    add = AnnIndex._add

    def traced(self: AnnIndex, batch: np.ndarray) -> None:
        inserting.set()
        try:
            add(self, batch)
        finally:
            inserting.clear()

    monkeypatch.setattr(AnnIndex, "_add", traced)
    # a costly insertion (large efConstruction) so that the build outlasts many searches
    index = TieredIndex(DIM, ann_min_items=N, hnsw=HnswParams(expansion_add=200))
    index.upsert(ids[:-1], items[:-1])
    index.upsert(ids[-1:], items[-1:])
    assert index.building  # the upsert that reached the threshold did not wait for the graph
    during = 0
    while index.building:
        before = inserting.is_set()
        assert len(index.search(queries[:4], 10)[0]) == 10
        during += before and inserting.is_set()
    assert index.wait_ready(60) and index.kind == "ann"
    assert during >= 10, "searches stalled while faiss inserted (GIL held?)"


def test_rebuild_happens_in_the_background(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, moved = world
    index = TieredIndex(DIM, ann_min_items=1_000, hnsw=HnswParams(max_stale=0.05))
    index.upsert(ids, items)  # a start-up load: the graph directly
    old = index.active
    assert isinstance(old, AnnIndex) and index.builds == 0
    held = _hold_builds(index, monkeypatch)
    monkeypatch.setattr(tiered, "_CHUNK", 700)  # the old graph is read in several chunks
    exact = ExactIndex(DIM)
    exact.upsert(ids, items)
    for at in range(0, 1_600, 10):  # 160 tombstones > 5 % of 3,000
        index.upsert([ids[at]], moved[at][None])
        exact.upsert([ids[at]], moved[at][None])
    held.wait_started()
    assert index.building and index.active is old and old.needs_rebuild
    # the old graph goes on answering and taking upserts, tombstones and all
    for at in range(1, 600, 10):
        index.upsert([ids[at]], moved[at][None])
        exact.upsert([ids[at]], moved[at][None])
    index.upsert(["new"], queries[1][None])
    exact.upsert(["new"], queries[1][None])
    assert index.active is old and old.tombstones == 220 and len(index) == N + 1
    assert index.search(queries[1:2], 1)[0][0][0] == "new"
    assert _recall(index.search(queries, 20), exact.search(queries, 20)) >= 0.95
    held.release()
    assert index.wait_ready(60) and index.builds == 1
    new = index.active
    assert isinstance(new, AnnIndex) and new is not old and len(new) == N + 1
    # the 151st tombstone (> 5 % of 3,000) set the rebuild off; the 69 replacements after it
    # were replayed from the build's log, and are the new graph's only tombstones
    assert new.tombstones == old.tombstones - 151 == 69
    np.testing.assert_allclose(index.vector(ids[11]), moved[11], atol=1e-6)
    assert index.search(queries[1:2], 1)[0][0][0] == "new"
    assert _recall(index.search(queries, 20), exact.search(queries, 20)) >= 0.95


def test_a_failed_build_leaves_the_exact_side_answering(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, _ = world
    index = TieredIndex(DIM, ann_min_items=1_000)

    def broken() -> AnnIndex:
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(index, "_new_ann", broken)
    index.upsert(ids[:999], items[:999])
    index.upsert(ids[999:1_100], items[999:1_100])
    assert index.wait_ready(60) and isinstance(index.build_error, MemoryError)
    assert index.kind == "exact" and len(index) == 1_100 and index.search(queries, 5)[0]
    monkeypatch.undo()  # the next upsert tries again
    index.upsert(ids[1_100:1_200], items[1_100:1_200])
    assert index.wait_ready(60) and index.kind == "ann" and len(index) == 1_200


def test_exact_snapshot_is_copied_on_write() -> None:
    index = ExactIndex(4, capacity=8)
    index.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    ids, vectors = index.snapshot()
    index.upsert(["c"], np.eye(4, dtype=np.float32)[2:3])  # a new row: the snapshot's untouched
    index.upsert(["a"], np.full((1, 4), 0.5, np.float32))  # an old row: written to a copy
    assert ids == ["a", "b"] and vectors.tolist() == np.eye(4)[:2].tolist()
    assert index.vector("a").tolist() == [0.5] * 4  # type: ignore[union-attr]
    assert index.ids == ["a", "b", "c"]


def test_a_build_swaps_in_when_upserts_outpace_its_catch_up(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, _ = world
    index = TieredIndex(DIM, ann_min_items=1_000)
    held = _hold_builds(index, monkeypatch)
    index.upsert(ids[:999], items[:999])
    index.upsert(ids[999:1_000], items[999:1_000])
    held.wait_started()
    index.upsert(ids[1_000:1_400], items[1_000:1_400])  # 400 logged rows: caught up unlocked
    replay, rounds = index._replay, []

    def replay_while_more_arrive(graph: AnnIndex, batches: list[tuple[list[str], Any]]) -> None:
        rounds.append(sum(len(b) for b, _ in batches))
        if len(rounds) == 1:  # more arrive meanwhile than were replayed: the log grew
            index.upsert(ids[1_400:2_000], items[1_400:2_000])
        replay(graph, batches)

    monkeypatch.setattr(index, "_replay", replay_while_more_arrive)
    held.release()
    assert index.wait_ready(60) and index.kind == "ann"
    assert rounds == [400, 600]  # no third round: the 600 were replayed under the lock
    assert len(index) == 2_000 and ids[1_999] in index and index.active.tombstones == 0
    exact = ExactIndex(DIM)
    exact.upsert(ids[:2_000], items[:2_000])
    assert _recall(index.search(queries, 10), exact.search(queries, 10)) >= 0.95
