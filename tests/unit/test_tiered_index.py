"""TieredIndex: exact below the threshold, HNSW from it on, kept current item by item."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss", reason="the ANN side needs faiss-cpu")

from llmrec_stream.bench.vectors import clustered_vectors  # noqa: E402
from llmrec_stream.config import Settings  # noqa: E402
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
    assert index.kind == "ann" and len(index) == 1_200 and ids[5] in index
    assert isinstance(index.active, AnnIndex) and index.active.tombstones == 0
    np.testing.assert_allclose(index.vector(ids[7]), moved[7], atol=1e-6)
    np.testing.assert_allclose(index.vector(ids[700]), items[700], atol=1e-6)
    exact = ExactIndex(DIM)
    exact.upsert(ids[:1_200], items[:1_200])
    exact.upsert(ids[:50], moved[:50])
    assert _recall(index.search(queries, 10), exact.search(queries, 10)) >= 0.95
    # a start-up load past the threshold builds the graph directly
    loaded = TieredIndex(DIM, ann_min_items=1_000)
    loaded.upsert(ids[:1_200], items[:1_200])
    assert loaded.kind == "ann" and len(loaded) == 1_200


def test_adds_and_replacements_after_the_switch_match_exact(world) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, moved = world
    index = TieredIndex(DIM, ann_min_items=1_000, hnsw=HnswParams(max_stale=0.1))
    exact = ExactIndex(DIM)
    for start in range(0, N, 250):  # item events arrive in micro-batches
        index.upsert(ids[start : start + 250], items[start : start + 250])
        exact.upsert(ids[start : start + 250], items[start : start + 250])
    assert index.kind == "ann" and len(index) == N
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
    assert ann.rebuilds == 0  # 200 stale rows < 10 % of 3,000: not yet
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
    assert ann.rebuilds >= 1 and ann.tombstones <= 0.1 * N
    exact.upsert([ids[3]], queries[0][None])
    assert _recall(index.search(queries, 20), exact.search(queries, 20)) >= 0.95
    np.testing.assert_allclose(index.vector(ids[1]), moved[1], atol=1e-6)


def test_exclusion_is_honoured_on_both_sides(world) -> None:  # type: ignore[no-untyped-def]
    ids, items, queries, _ = world
    for threshold in (10_000, 100):  # exact, then ann
        index = TieredIndex(DIM, ann_min_items=threshold)
        index.upsert(ids[:1_000], items[:1_000])
        plain = index.search(queries[:2], 10)
        banned = {i for i, _ in plain[0][:5]} | {"unknown"}
        got = index.search(queries[:2], 10, exclude=[banned])
        assert len(got[0]) == 10 and not banned & {i for i, _ in got[0]}
        assert got[1] == plain[1]
        assert [i for i, _ in got[0][:5]] == [i for i, _ in plain[0][5:10]]


def test_from_settings() -> None:
    s = Settings(ann_min_items=7, ann_connectivity=16, ann_expansion_search=64, ann_max_stale=0.5)
    index = TieredIndex.from_settings(8, s)
    assert index.ann_min_items == 7
    assert index.hnsw == HnswParams(connectivity=16, expansion_search=64, max_stale=0.5)
    assert Settings().ann_min_items == 50_000


def test_row_map_places_in_place_and_moves_to_new_rows() -> None:
    rows = RowMap()
    assert [rows.place(i) for i in "abca"] == [0, 1, 2, 0]
    assert rows.move("b") == 3 and rows.dead == 1 and len(rows) == 3 and rows.size == 4
    assert rows.ids() == ["a", "c", "b"] and rows.alive().tolist() == [True, False, True, True]
    assert rows.rows_of(["b", "zz", "a"]) == [3, 0] and rows.id_at(1) == "b"
    for j in range(3_000):  # growth past the initial capacity
        rows.place(f"x{j}")
    assert rows.size == 3_004 and rows.alive()[-1]
