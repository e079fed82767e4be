"""`bench pipeline` on a tiny input: every phase runs and the figures are well formed.

Not a timed test: it checks that the benchmark runs end to end (drain, load points, the big
catalog's RSS, both peers) and that its peers did the work they claim.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llmrec_stream.bench.pipeline import bench_pipeline
from llmrec_stream.bench.pipeline_report import pipeline_table

pytest_plugins = ["tests.encoder_fixtures"]
pytestmark = pytest.mark.slow


def test_tiny_pipeline_bench(encoder_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="the hand-written peer needs `bench`")
    from llmrec_stream.bench.cpu_account import account_table, pyspy_binary

    pyspy = pyspy_binary()  # the CPU accounting where py-spy is installed
    r = bench_pipeline(
        encoder_dir,
        n_items=40,
        n_users=20,
        drain_events=150,
        load_s=2.0,
        fractions=(0.5,),
        precision="fp32",
        peer_events=40,
        batched_events=60,
        rss_catalog=300,
        logdir=tmp_path,
        pyspy=pyspy,
    )
    for key in ("max_events_per_s", "peer_encoder_bound_events_per_s",
                "peer_hand_written_events_per_s", "cpu_ms_per_event", "worker_peak_rss_mb",
                "rss_catalog_worker_peak_mb"):
        assert r[key] > 0 and math.isfinite(r[key]), key
    hand = r["peer_hand_written"]
    assert hand["events"] == 40
    # the peer sees the stream in order: every comment among its events was encoded
    assert 0 < hand["comments"] < 40
    batched = r["peer_micro_batched"]
    assert batched["events"] == 60 and 0 < batched["comments"] < 60
    assert batched["batches"] >= 1 and r["peer_micro_batched_events_per_s"] > 0
    assert r["peer_encoder"]["spinning"] is False  # the worker's setting, not the default
    assert len(r["peer_encoder_runs"]) == 2  # before and after the drain
    assert [p["fraction"] for p in r["load"]] == [0.5]
    table = pipeline_table(r)
    assert "300-item catalog" in table and "hand-written" in table
    assert "micro-batched" in table
    if pyspy is not None:
        acc = r["cpu_account"]
        assert acc["samples"] > 0 and acc["events"] == 150
        # a 150-event drain lasts about as long as py-spy takes to attach: which parts it
        # catches varies; that every CPU second lands in some part does not
        assert acc["worker_cpu_ms_per_event"] > 0
        assert sum(acc["parts_ms_per_event"].values()) == pytest.approx(
            acc["worker_cpu_ms_per_event"])
        assert "CPU ms/event" in account_table(acc)
