"""`bench retrieval` runs on a tiny catalog and writes well-formed JSON and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("faiss", reason="the retrieval benchmark needs faiss-cpu")
pytest.importorskip("matplotlib", reason="the benchmarks draw with matplotlib")

from llmrec_stream.bench.cli import bench_group  # noqa: E402
from llmrec_stream.bench.retrieval import bench_retrieval  # noqa: E402
from llmrec_stream.bench.retrieval_report import retrieval_payload  # noqa: E402
from llmrec_stream.bench.retrieval_states import replace_items, seen_sets  # noqa: E402
from llmrec_stream.bench.vectors import clustered_vectors, default_clusters  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_clustered_vectors_are_unit_and_clustered() -> None:
    items, centers = clustered_vectors(3000, 384, seed=4)
    assert items.shape == (3000, 384) and items.dtype == np.float32
    assert centers.shape == (default_clusters(3000), 384)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    to_centre = (items @ centers.T).max(axis=1)
    assert 0.6 < float(np.median(to_centre)) < 0.8  # about 1/sqrt(2) at spread 1.0
    queries, same = clustered_vectors(5, 384, centers=centers, seed=5)
    assert same is centers and queries.shape == (5, 384)


def test_bench_retrieval_measures_both_indexes() -> None:
    (result,) = bench_retrieval([2000], queries=8, k=20, expansions=(32, 128), threads=1)
    assert result.items == 2000 and result.queries == 8
    assert result.exact_latency.p99_ms >= result.exact_latency.p50_ms > 0
    assert result.exact_memory_bytes >= 2000 * 384 * 4
    assert result.ann_build_s > 0 and result.ann_memory_bytes > 0
    assert [p.expansion_search for p in result.ann] == [32, 128]
    assert all(0.0 <= p.recall <= 1.0 for p in result.ann)
    assert result.ann[-1].recall >= 0.9
    payload = retrieval_payload([result])
    assert "met" not in payload["target"]  # no 1M catalog, no verdict
    json.dumps(payload)


def test_bench_retrieval_command_writes_json_and_png(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = CliRunner().invoke(
        bench_group,
        [
            "retrieval",
            "--sizes",
            "2000",
            "--queries",
            "5",
            "--k",
            "10",
            "--ef",
            "64",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
    )
    assert run.exit_code == 0, run.output
    assert "recall@10" in run.output and "exact" in run.output
    body = json.loads((out / "retrieval.json").read_text())
    assert body["benchmark"] == "retrieval"
    assert body["environment"]["versions"]["faiss-cpu"]
    (size,) = body["results"]
    assert size["items"] == 2000 and size["ann"][0]["expansion_search"] == 64
    assert {"p50_ms", "p99_ms", "mean_ms"} <= set(size["exact_latency"])
    assert (out / "retrieval.png").read_bytes()[:8] == PNG_MAGIC
    assert "25% replaced + 50 seen" in run.output  # churn is on by default
    assert [c["tombstones"] for c in size["churn"] if not c["seen"]] == [200, 500]


def test_sizes_must_be_positive_integers(tmp_path: Path) -> None:
    run = CliRunner().invoke(bench_group, ["retrieval", "--sizes", "10,x", "--out", str(tmp_path)])
    assert run.exit_code != 0 and "integers" in run.output


def test_churn_states_carry_their_tombstones_and_exclusions() -> None:
    (result,) = bench_retrieval(
        [2000], queries=6, k=10, expansions=(64,), threads=1, churn=(0.25, 0.10), seen=6
    )
    assert [(c.scenario, c.replaced, c.tombstones, c.seen) for c in result.churn] == [
        ("fresh + 6 seen", 0.0, 0, 6),
        ("10% replaced", 0.10, 200, 0),
        ("10% replaced + 6 seen", 0.10, 200, 6),
        ("25% replaced", 0.25, 500, 0),
        ("25% replaced + 6 seen", 0.25, 500, 6),
    ]
    for c in result.churn:
        (point,) = c.ann
        assert 0.5 <= point.recall <= 1.0 and c.exact_latency.p99_ms > 0
    json.dumps(retrieval_payload([result]))


def test_churn_without_seen_items_and_seen_items_without_churn() -> None:
    def churn_of(churn: tuple[float, ...], seen: int) -> list[str]:
        (r,) = bench_retrieval([1000], queries=3, k=5, expansions=(32,), threads=1,
                               churn=churn, seen=seen)
        return [c.scenario for c in r.churn]

    assert churn_of((0.1,), 0) == ["10% replaced"]
    assert churn_of((), 4) == ["fresh + 4 seen"]
    assert churn_of((), 0) == []
    with pytest.raises(ValueError, match="churn shares"):
        churn_of((0.1, 1.0), 0)


def test_churn_setup_replaces_vectors_in_both_indexes_and_draws_seen_sets() -> None:
    from llmrec_stream.retrieval.ann import AnnIndex
    from llmrec_stream.retrieval.exact import ExactIndex

    items, centers = clustered_vectors(400, 384, seed=1)
    old = items.copy()
    ids = [f"item{j}" for j in range(400)]
    exact, ann = ExactIndex(384, capacity=400), AnnIndex(384, threads=1, max_stale=1.0)
    exact.upsert(ids, items)
    ann.upsert(ids, items)
    replace_items(exact, ann, items, ids, 0, 40, centers, seed=9)
    assert ann.tombstones == 40 and len(ann) == len(exact) == 400
    assert not np.allclose(items[:40], old[:40]) and np.array_equal(items[40:], old[40:])
    for j in (0, 39, 40):
        np.testing.assert_array_equal(exact.vector(ids[j]), items[j])
        np.testing.assert_array_equal(ann.vector(ids[j]), items[j])
    truth = exact.search(items[:3], 10)
    seen = seen_sets(truth, ids, 8, seed=2)
    for hits, s in zip(truth, seen, strict=True):
        assert len(s) == 8 and len(s & {i for i, _ in hits}) >= 4
