"""The pipeline benchmark's table, from a result as `bench_pipeline` returns it."""

from __future__ import annotations

from typing import Any

from llmrec_stream.bench.pipeline_report import pipeline_table


def _result() -> dict[str, Any]:
    return {
        "workers": 1,
        "max_events_per_s": 150.0,
        "peer_encoder": {"texts_per_s": 60.0, "cpu_ms_per_text": 9.5},
        "peer_encoder_bound_events_per_s": 200.0,
        "ratio_to_encoder_bound": 0.75,
        "cpu_ratio_to_encoder_bound": 0.47,
        "peer_hand_written": {"events": 1000, "comments": 301},
        "peer_hand_written_events_per_s": 50.0,
        "ratio_to_hand_written": 3.0,
        "cpu_ms_per_event": 6.1,
        "evalsha_per_event": 0.8,
        "redis_bytes_per_user": 2500.0,
        "worker_peak_rss_mb": 280.0,
        "load": [
            {"fraction": 0.5, "rate": 75.0, "achieved": 74.9, "p50_ms": 200.0,
             "p95_ms": 400.0, "p99_ms": 700.0},
        ],
    }


def test_table_names_every_figure() -> None:
    table = pipeline_table(_result())
    assert "301/1000 comments encoded" in table
    assert "9.5 CPU ms/text" in table
    assert "200 / 400 / 700" in table
    assert "0.47" in table
    assert "catalog" not in table  # no big-catalog run, no row


def test_table_reports_the_big_catalog() -> None:
    table = pipeline_table(_result() | {"rss_catalog_items": 100_000,
                                        "rss_catalog_worker_peak_mb": 612.0})
    assert "100,000-item catalog" in table and "612" in table


def test_mean_bound() -> None:
    from llmrec_stream.bench.pipeline_peers import EncoderBound, mean_bound

    runs = [EncoderBound(300.0, 90.0, 8.0, 0, False), EncoderBound(100.0, 30.0, 10.0, 0, False)]
    assert mean_bound(runs) == EncoderBound(200.0, 60.0, 9.0, 0, False)


def test_table_reports_the_micro_batched_peer() -> None:
    table = pipeline_table(_result() | {
        "peer_micro_batched": {"encoder": "st-openvino", "batch_max": 256,
                               "cpu_ms_per_event": 3.25},
        "peer_micro_batched_events_per_s": 75.0,
        "ratio_to_micro_batched": 2.0,
    })
    assert "peer 3: micro-batched loop events/s (st-openvino, batches of <= 256, 3.2" in table
    assert "ratio (target >= 2)" in table


def test_batched_top_k_matches_a_full_sort() -> None:
    import numpy as np

    from llmrec_stream.bench.pipeline_batched import top_k

    rng = np.random.default_rng(0)
    items = rng.standard_normal((50, 8)).astype(np.float32)
    profiles = rng.standard_normal((5, 8)).astype(np.float32)
    expected = np.argsort(-(profiles @ items.T), axis=1)[:, :7]
    np.testing.assert_array_equal(top_k(profiles, items, 7), expected)
    assert top_k(profiles, items[:3], 7).shape == (5, 3)  # k larger than the catalog
