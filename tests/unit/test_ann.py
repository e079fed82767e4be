"""AnnIndex: recall against ExactIndex, replace, exclusion, and the ItemIndex contract."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss", reason="AnnIndex needs faiss-cpu")

from llmrec_stream.bench.vectors import clustered_vectors  # noqa: E402
from llmrec_stream.retrieval.ann import AnnIndex  # noqa: E402
from llmrec_stream.retrieval.exact import ExactIndex  # noqa: E402
from llmrec_stream.retrieval.protocol import ItemIndex  # noqa: E402

DIM = 384


def _ids(n: int, prefix: str = "i") -> list[str]:
    return [f"{prefix}{j}" for j in range(n)]


@pytest.fixture(scope="module")
def catalog() -> tuple[list[str], np.ndarray, np.ndarray]:
    items, centers = clustered_vectors(5_000, DIM, seed=1)
    queries, _ = clustered_vectors(50, DIM, centers=centers, seed=2)
    return _ids(len(items)), items, queries


def test_satisfies_item_index_protocol() -> None:
    index: ItemIndex = AnnIndex(DIM)
    assert index.dim == DIM and len(index) == 0 and "x" not in index
    assert index.search(np.zeros((2, DIM), np.float32), 5) == [[], []]


def test_recall_at_100_vs_exact(catalog: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, items, queries = catalog
    exact, ann = ExactIndex(DIM), AnnIndex(DIM)
    exact.upsert(ids, items)
    ann.upsert(ids, items)
    assert len(ann) == len(ids) and ids[17] in ann
    truth = exact.search(queries, 100)
    got = ann.search(queries, 100)
    recall = np.mean(
        [len({i for i, _ in g} & {i for i, _ in t}) / 100 for g, t in zip(got, truth, strict=True)]
    )
    assert recall >= 0.95, recall
    for hits in got:
        scores = [s for _, s in hits]
        assert len(hits) == 100 and scores == sorted(scores, reverse=True)
    # scores are inner products, as ExactIndex reports them
    first_id, first_score = got[0][0]
    assert first_score == pytest.approx(float(items[ids.index(first_id)] @ queries[0]), abs=1e-5)


def test_replace_moves_the_item(catalog: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, items, queries = catalog
    ann = AnnIndex(DIM)
    ann.upsert(ids[:1000], items[:1000])
    target = queries[3]
    assert ann.search(target[None], 1)[0][0][0] != "i5"
    ann.upsert(["i5"], target[None])  # replace: i5 now sits exactly on the query
    assert len(ann) == 1000
    np.testing.assert_allclose(ann.vector("i5"), target, atol=1e-6)
    top = ann.search(target[None], 3)[0]
    assert top[0][0] == "i5" and top[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [i for i, _ in top].count("i5") == 1
    # and back: the old position no longer answers for it
    ann.upsert(["i5"], items[5][None])
    assert ann.search(target[None], 1)[0][0][0] != "i5"
    assert ann.vector("missing") is None


def test_repeated_id_in_one_batch_keeps_the_last(
    catalog: tuple[list[str], np.ndarray, np.ndarray],
) -> None:
    _, items, _ = catalog
    ann = AnnIndex(DIM)
    ann.upsert(["a", "b", "a"], items[:3])
    assert len(ann) == 2
    np.testing.assert_allclose(ann.vector("a"), items[2], atol=1e-6)


def test_exclusion_over_fetches(catalog: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, items, queries = catalog
    ann = AnnIndex(DIM)
    ann.upsert(ids, items)
    plain = ann.search(queries[:2], 20)
    banned = {i for i, _ in plain[0][:15]} | {"not-in-index"}
    got = ann.search(queries[:2], 20, exclude=[banned])
    assert len(got[0]) == 20 and not banned & {i for i, _ in got[0]}
    assert got[1] == plain[1]  # a query without an exclusion list is untouched
    assert [i for i, _ in got[0][:5]] == [i for i, _ in plain[0][15:20]]


def test_exclusion_of_almost_everything() -> None:
    items, _ = clustered_vectors(30, DIM, seed=3)
    ann = AnnIndex(DIM)
    ids = _ids(30)
    ann.upsert(ids, items)
    got = ann.search(items[:1], 10, exclude=[set(ids[:27])])[0]
    assert sorted(i for i, _ in got) == ids[27:]


def test_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="shape"):
        AnnIndex(4).upsert(["a"], np.zeros((1, 3), np.float32))
