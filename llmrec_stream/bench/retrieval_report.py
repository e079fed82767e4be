"""`bench retrieval`'s JSON body, table and chart (`retrieval.SizeResult` in)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec_stream.bench.report import format_table
from llmrec_stream.bench.retrieval import TARGET_P99_MS, TARGET_RECALL, SizeResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def retrieval_payload(results: Sequence[SizeResult]) -> dict[str, Any]:
    """The JSON body: every figure, plus the verdict on the 1M target where 1M was run."""
    verdict: dict[str, Any] = {"p99_ms_max": TARGET_P99_MS, "recall_min": TARGET_RECALL}
    for r in results:
        if r.items >= 1_000_000:
            best = r.best()
            verdict["items"] = r.items
            verdict["met"] = best is not None and best.latency.p99_ms <= TARGET_P99_MS
            verdict["best"] = asdict(best) if best else None
    return {"results": [asdict(r) for r in results], "target": verdict}


def retrieval_table(results: Sequence[SizeResult]) -> str:
    headers = [
        "items", "catalog", "index", "ef", "p50 ms", "p99 ms", f"recall@{_k(results)}",
        "build s", "MB",
    ]
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [
                r.items,
                "fresh",
                "exact",
                "-",
                r.exact_latency.p50_ms,
                r.exact_latency.p99_ms,
                1.0,
                r.exact_build_s,
                r.exact_memory_bytes / 2**20,
            ]
        )
        for p in r.ann:
            rows.append(
                [
                    r.items,
                    "fresh",
                    "ann",
                    p.expansion_search,
                    p.latency.p50_ms,
                    p.latency.p99_ms,
                    p.recall,
                    r.ann_build_s,
                    r.ann_memory_bytes / 2**20,
                ]
            )
        for c in r.churn:
            rows.append([r.items, c.scenario, "exact", "-", c.exact_latency.p50_ms,
                         c.exact_latency.p99_ms, 1.0, "-", "-"])
            rows += [
                [r.items, f"{c.scenario} ({c.tombstones:,} tombstones)", "ann",
                 p.expansion_search, p.latency.p50_ms, p.latency.p99_ms, p.recall, "-", "-"]
                for p in c.ann
            ]
    return format_table(headers, rows)


def _k(results: Sequence[SizeResult]) -> int:
    return results[0].k if results else 0


def retrieval_chart(results: Sequence[SizeResult]) -> Callable[[Figure], None]:
    """Latency by catalog size, recall against p99 per ef, and build time."""

    def draw(fig: Figure) -> None:
        lat, rec, build = fig.subplots(1, 3)
        sizes = [r.items for r in results]
        lat.plot(sizes, [r.exact_latency.p99_ms for r in results], "o-", label="exact p99")
        lat.plot(sizes, [r.exact_latency.p50_ms for r in results], "o--", label="exact p50")
        for j in range(max((len(r.ann) for r in results), default=0)):
            pts = [(r.items, r.ann[j]) for r in results if j < len(r.ann)]
            ef = pts[0][1].expansion_search
            lat.plot(
                [s for s, _ in pts],
                [p.latency.p99_ms for _, p in pts],
                "s-",
                label=f"ANN ef={ef} p99",
            )
        lat.axhline(TARGET_P99_MS, color="grey", lw=0.8, ls=":")
        lat.set(
            xscale="log",
            yscale="log",
            xlabel="catalog items",
            ylabel="ms per user (single query)",
            title="Search latency",
        )
        lat.legend(fontsize=7)
        for r in results:
            rec.plot(
                [p.latency.p99_ms for p in r.ann],
                [p.recall for p in r.ann],
                "o-",
                label=f"{r.items:,} items",
            )
            for p in r.ann:
                rec.annotate(f"ef {p.expansion_search}", (p.latency.p99_ms, p.recall), fontsize=6)
        rec.axhline(TARGET_RECALL, color="grey", lw=0.8, ls=":")
        rec.axvline(TARGET_P99_MS, color="grey", lw=0.8, ls=":")
        rec.set(
            xlabel="ANN p99 ms",
            ylabel=f"recall@{_k(results)} vs exact",
            title="ANN recall / latency",
        )
        rec.legend(fontsize=7)
        width = 0.35
        x = np.arange(len(results))
        build.bar(x - width / 2, [r.exact_build_s for r in results], width, label="exact")
        build.bar(x + width / 2, [r.ann_build_s for r in results], width, label="ANN")
        build.set_xticks(x, [f"{n:,}" for n in sizes])
        build.set(
            ylabel="seconds", title="Build time", yscale="log" if _spread(results) else "linear"
        )
        build.legend(fontsize=7)

    return draw


def _spread(results: Sequence[SizeResult]) -> bool:
    times = [t for r in results for t in (r.exact_build_s, r.ann_build_s) if t > 0]
    return bool(times) and max(times) / min(times) > 50 and not math.isnan(max(times))
