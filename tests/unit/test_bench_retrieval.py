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
from llmrec_stream.bench.retrieval import bench_retrieval, retrieval_payload  # noqa: E402
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


def test_sizes_must_be_positive_integers(tmp_path: Path) -> None:
    run = CliRunner().invoke(bench_group, ["retrieval", "--sizes", "10,x", "--out", str(tmp_path)])
    assert run.exit_code != 0 and "integers" in run.output
