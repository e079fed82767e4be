"""The exact item index: growth, replacement, and top-k checked against brute force numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.retrieval.protocol import ItemIndex


def units(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def ids(n: int, prefix: str = "item") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


def brute_ranking(
    matrix: np.ndarray, item_ids: list[str], query: np.ndarray, exclude: set[str]
) -> list[tuple[str, float]]:
    """Every non-excluded item by (score descending, id), scored in float64."""
    scores = matrix.astype(np.float64) @ query.astype(np.float64)
    order = sorted(
        (i for i in range(len(item_ids)) if item_ids[i] not in exclude),
        key=lambda i: (-scores[i], item_ids[i]),
    )
    return [(item_ids[i], float(scores[i])) for i in order]


def assert_matches_brute(
    got: list[tuple[str, float]], ranking: list[tuple[str, float]], k: int
) -> None:
    want = ranking[:k]
    assert len(got) == len(want)
    got_scores = np.array([s for _, s in got])
    want_scores = np.array([s for _, s in want])
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
    assert all(a >= b for a, b in zip(got_scores, got_scores[1:], strict=False))
    assert len({i for i, _ in got}) == len(got)
    # Ids must agree wherever no other candidate scores within float32 rounding; exact ties
    # are pinned by test_exact_scores_match_brute_force_including_ties.
    gap = 1e-4
    for pos, ((gid, gs), (wid, _)) in enumerate(zip(got, want, strict=True)):
        near = [s for j, (_, s) in enumerate(ranking) if j != pos and abs(s - gs) < gap]
        if not near:
            assert gid == wid


def test_exact_index_keeps_the_item_index_protocol() -> None:
    index: ItemIndex = ExactIndex(4)
    assert index.dim == 4


def test_empty_index() -> None:
    index = ExactIndex(4)
    assert len(index) == 0
    assert index.ids == []
    assert "x" not in index
    assert index.vector("x") is None
    assert index.search(np.ones((3, 4), dtype=np.float32), 5) == [[], [], []]
    assert index.search(np.zeros((0, 4), dtype=np.float32), 5) == []


def test_upsert_grows_past_capacity() -> None:
    rng = np.random.default_rng(0)
    index = ExactIndex(3, capacity=2)
    vecs = units(rng, 37, 3)
    names = ids(37)
    for j in range(0, 37, 5):  # several batches, crossing the capacity more than once
        index.upsert(names[j : j + 5], vecs[j : j + 5])
    assert len(index) == 37
    assert index.ids == names
    for name, vec in zip(names, vecs, strict=True):
        assert name in index
        np.testing.assert_array_equal(index.vector(name), vec)
    got = index.search(vecs[:1], 37)[0]
    assert {i for i, _ in got} == set(names)


def test_one_big_batch_past_capacity() -> None:
    rng = np.random.default_rng(1)
    index = ExactIndex(5, capacity=1)
    vecs = units(rng, 100, 5)
    index.upsert(ids(100), vecs)
    assert len(index) == 100
    np.testing.assert_array_equal(index.vector("item-00099"), vecs[99])


def test_upsert_replaces_a_vector() -> None:
    index = ExactIndex(2, capacity=4)
    index.upsert(["a", "b"], np.array([[1, 0], [0, 1]], dtype=np.float32))
    index.upsert(["a"], np.array([[0, -1]], dtype=np.float32))
    assert len(index) == 2
    assert index.ids == ["a", "b"]
    np.testing.assert_array_equal(index.vector("a"), [0, -1])
    assert index.search(np.array([[1, 0]], dtype=np.float32), 2)[0] == [("a", 0.0), ("b", 0.0)]
    got = index.search(np.array([[0, 1]], dtype=np.float32), 2)[0]
    assert got == [("b", 1.0), ("a", -1.0)]


def test_vector_returns_a_copy() -> None:
    index = ExactIndex(2)
    index.upsert(["a"], np.array([[1, 0]], dtype=np.float32))
    v = index.vector("a")
    assert v is not None
    v[:] = 9
    np.testing.assert_array_equal(index.vector("a"), [1, 0])


def test_upsert_copies_the_input() -> None:
    index = ExactIndex(2)
    vecs = np.array([[1, 0]], dtype=np.float32)
    index.upsert(["a"], vecs)
    vecs[:] = 7
    np.testing.assert_array_equal(index.vector("a"), [1, 0])


def test_ids_returns_a_copy() -> None:
    index = ExactIndex(2)
    index.upsert(["a"], np.array([[1, 0]], dtype=np.float32))
    index.ids.append("b")
    assert index.ids == ["a"]


@pytest.mark.parametrize(
    "shape",
    [(2, 3), (1, 4), (4,), (3, 4), (0, 4)],
    ids=["wrong-dim", "too-few-rows", "flat", "too-many-rows", "no-rows"],
)
def test_wrong_shape_is_rejected(shape: tuple[int, ...]) -> None:
    index = ExactIndex(4)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        index.upsert(["a", "b"], np.zeros(shape, dtype=np.float32))
    assert len(index) == 0


def test_query_of_the_wrong_dimension_is_rejected() -> None:
    index = ExactIndex(4)
    index.upsert(["a"], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        index.search(np.ones((1, 3), dtype=np.float32), 1)


@pytest.mark.parametrize("seed", range(5))
def test_top_k_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, dim, k = 500, 16, 10
    vecs = units(rng, n, dim)
    names = [f"it{j}" for j in rng.permutation(n)]
    index = ExactIndex(dim, capacity=64)
    index.upsert(names, vecs)
    queries = units(rng, 7, dim)
    got = index.search(queries, k)
    assert len(got) == 7
    for q, row in zip(queries, got, strict=True):
        assert_matches_brute(row, brute_ranking(vecs, names, q, set()), k)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    dim=st.integers(1, 8),
    k=st.integers(1, 80),
    n_excluded=st.integers(0, 70),
)
def test_top_k_with_exclusion_matches_brute_force(
    seed: int, n: int, dim: int, k: int, n_excluded: int
) -> None:
    rng = np.random.default_rng(seed)
    vecs = units(rng, n, dim)
    names = ids(n)
    index = ExactIndex(dim, capacity=8)
    index.upsert(names, vecs)
    queries = units(rng, 3, dim)
    excluded = [
        set(rng.choice(names, size=min(n_excluded, n), replace=False).tolist()) | {"unknown"},
        set(),
        {names[0]},
    ]
    got = index.search(queries, k, exclude=excluded)
    for q, row, ex in zip(queries, got, excluded, strict=True):
        assert_matches_brute(row, brute_ranking(vecs, names, q, ex), k)
        assert not {i for i, _ in row} & ex


def test_exclusion_removes_the_best_items() -> None:
    index = ExactIndex(2)
    index.upsert(["a", "b", "c"], np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32))
    q = np.array([[1, 0], [1, 0]], dtype=np.float32)
    got = index.search(q, 2, exclude=[{"a"}, set()])
    assert [i for i, _ in got[0]] == ["b", "c"]
    assert [i for i, _ in got[1]] == ["a", "b"]


def test_exclusion_of_everything_returns_nothing() -> None:
    index = ExactIndex(2)
    index.upsert(["a", "b"], np.eye(2, dtype=np.float32))
    assert index.search(np.ones((1, 2), dtype=np.float32), 5, exclude=[{"a", "b"}]) == [[]]


def test_fewer_exclusion_sets_than_queries() -> None:
    index = ExactIndex(2)
    index.upsert(["a", "b"], np.eye(2, dtype=np.float32))
    q = np.array([[1, 0], [1, 0]], dtype=np.float32)
    got = index.search(q, 1, exclude=[{"a"}])
    assert got == [[("b", 0.0)], [("a", 1.0)]]


def test_k_larger_than_n_returns_everything() -> None:
    index = ExactIndex(2)
    index.upsert(["a", "b", "c"], np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32))
    got = index.search(np.array([[1, 0]], dtype=np.float32), 50)[0]
    assert got == [("a", 1.0), ("b", 0.0), ("c", -1.0)]


def test_scores_are_python_floats() -> None:
    index = ExactIndex(2)
    index.upsert(["a"], np.array([[1, 0]], dtype=np.float32))
    ((item, score),) = index.search(np.array([[0.5, 0]], dtype=np.float32), 1)[0]
    assert item == "a" and type(score) is float and score == 0.5


def test_ties_are_ordered_by_item_id() -> None:
    index = ExactIndex(2)
    names = ["d", "b", "e", "a", "c"]
    index.upsert(names, np.tile(np.array([[1, 0]], dtype=np.float32), (5, 1)))
    got = index.search(np.array([[1, 0]], dtype=np.float32), 5)[0]
    assert got == [(i, 1.0) for i in ["a", "b", "c", "d", "e"]]


def test_ties_below_a_better_item_are_ordered_by_item_id() -> None:
    index = ExactIndex(2)
    index.upsert(
        ["z", "y", "best", "x"],
        np.array([[0.5, 0], [0.5, 0], [1, 0], [0.5, 0]], dtype=np.float32),
    )
    got = index.search(np.array([[1, 0]], dtype=np.float32), 4)[0]
    assert [i for i, _ in got] == ["best", "x", "y", "z"]


def test_ties_at_the_cut_keep_the_smallest_ids() -> None:
    n = 20
    names = [f"i{j:02d}" for j in range(n)]
    vecs = np.tile(np.array([[1, 0]], dtype=np.float32), (n, 1))
    q = np.array([[1, 0]], dtype=np.float32)
    forward, backward = ExactIndex(2), ExactIndex(2)
    forward.upsert(names, vecs)
    backward.upsert(names[::-1], vecs)
    want = [("i00", 1.0), ("i01", 1.0), ("i02", 1.0)]
    assert forward.search(q, 3)[0] == want
    assert backward.search(q, 3)[0] == want


def test_zero_capacity_grows() -> None:
    index = ExactIndex(2, capacity=0)
    index.upsert(["a"], np.ones((1, 2), dtype=np.float32))
    assert index.vector("a") is not None


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 40),
    dim=st.integers(1, 4),
    k=st.integers(1, 50),
)
def test_exact_scores_match_brute_force_including_ties(
    data: st.DataObject, n: int, dim: int, k: int
) -> None:
    # Small integer vectors: float32 and float64 scores are exact, ties are common, and the
    # whole ranking (score descending, then id) must equal brute force, whatever the order of
    # insertion.
    small = st.integers(-2, 2)
    vecs = np.array(
        data.draw(st.lists(st.lists(small, min_size=dim, max_size=dim), min_size=n, max_size=n)),
        dtype=np.float32,
    )
    query = np.array(data.draw(st.lists(small, min_size=dim, max_size=dim)), dtype=np.float32)
    names = ids(n)
    order = data.draw(st.permutations(range(n)))
    exclude = set(data.draw(st.lists(st.sampled_from(names), max_size=n)))
    index = ExactIndex(dim, capacity=3)
    index.upsert([names[i] for i in order], vecs[list(order)])
    got = index.search(query[None, :], k, exclude=[exclude])[0]
    assert got == brute_ranking(vecs, names, query, exclude)[:k]


def test_k_zero_returns_nothing() -> None:
    index = ExactIndex(2)
    index.upsert(["a", "b"], np.eye(2, dtype=np.float32))
    assert index.search(np.ones((2, 2), dtype=np.float32), 0) == [[], []]
