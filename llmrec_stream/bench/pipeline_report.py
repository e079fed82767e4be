"""`bench pipeline`'s table and chart (the figures `pipeline.bench_pipeline` returns)."""

from __future__ import annotations

from typing import Any


def pipeline_table(r: dict[str, Any]) -> str:
    from llmrec_stream.bench.report import format_table

    enc, hand = r["peer_encoder"], r["peer_hand_written"]
    rows: list[list[object]] = [
        [f"max sustained events/s (drain, {r['workers']} worker(s))", r["max_events_per_s"]],
        [
            f"peer 1: encoder-only bound events/s ({enc['texts_per_s']:.0f} texts/s, "
            f"{enc['cpu_ms_per_text']:.1f} CPU ms/text)",
            r["peer_encoder_bound_events_per_s"],
        ],
        ["  ratio (target >= 0.8)", r["ratio_to_encoder_bound"]],
        ["  by CPU: encoder CPU ms/event / worker CPU ms/event", r["cpu_ratio_to_encoder_bound"]],
        [
            f"peer 2: hand-written loop events/s ({hand['comments']}/{hand['events']} "
            "comments encoded)",
            r["peer_hand_written_events_per_s"],
        ],
        ["  ratio (target >= 10)", r["ratio_to_hand_written"]],
    ]
    if "peer_micro_batched" in r:
        batched = r["peer_micro_batched"]
        rows += [
            [
                f"peer 3: micro-batched loop events/s ({batched['encoder']}, batches of "
                f"<= {batched['batch_max']}, {batched['cpu_ms_per_event']:.1f} CPU ms/event)",
                r["peer_micro_batched_events_per_s"],
            ],
            ["  ratio (target >= 2)", r["ratio_to_micro_batched"]],
        ]
    rows += [
        ["worker CPU ms/event", r["cpu_ms_per_event"]],
        ["EVALSHA calls/event", r["evalsha_per_event"]],
        ["Redis bytes/user (target <= 4096)", r["redis_bytes_per_user"]],
        ["worker peak RSS MB", r["worker_peak_rss_mb"]],
    ]
    if "rss_catalog_items" in r:
        rows.append(
            [
                f"worker peak RSS MB, {r['rss_catalog_items']:,}-item catalog (target <= 1024)",
                r["rss_catalog_worker_peak_mb"],
            ]
        )
    for p in r["load"]:
        rows.append(
            [
                f"freshness @{p['fraction']:.0%} of max ({p['achieved']:.0f}/s) p50/p95/p99 ms",
                f"{p['p50_ms']:.0f} / {p['p95_ms']:.0f} / {p['p99_ms']:.0f}",
            ]
        )
    return format_table(["measure", "value"], rows)


def pipeline_chart(r: dict[str, Any]) -> Any:
    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        names = ["pipeline", "encoder bound", "hand-written"]
        vals = [
            r["max_events_per_s"],
            r["peer_encoder_bound_events_per_s"],
            r["peer_hand_written_events_per_s"],
        ]
        if "peer_micro_batched_events_per_s" in r:
            names.append("micro-batched")
            vals.append(r["peer_micro_batched_events_per_s"])
        ax1.bar(names, vals)
        ax1.set_ylabel("events/s")
        ax1.set_title("throughput")
        fr = [p["fraction"] for p in r["load"]]
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            ax2.plot(fr, [p[q] for p in r["load"]], marker="o", label=q)
        ax2.axhline(1000, ls="--", c="grey")
        ax2.set_xlabel("fraction of max load")
        ax2.set_ylabel("freshness ms")
        ax2.legend()

    return draw
