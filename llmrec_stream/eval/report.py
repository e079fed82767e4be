"""Results on disk: ``results.json`` (everything), ``table.md`` (what is printed), ``ndcg.png``."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmrec_stream.eval.harness import ModelResult

COLUMNS: tuple[str, ...] = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def table(results: Sequence[ModelResult]) -> str:
    """Markdown table of test metrics, one row per (data set, model), then cold-start rows."""
    head = "| dataset | model | " + " | ".join(COLUMNS) + " | valid ndcg@10 | seconds |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 4)]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.dataset} | {r.model} | skipped: {r.skipped} |")
            continue
        cells = " | ".join(f"{r.test[c]:.4f}" for c in COLUMNS)
        lines.append(f"| {r.dataset} | {r.model} | {cells} | {r.valid['ndcg@10']:.4f} "
                     f"| {r.seconds:.0f} |")
    cold = [r for r in results if r.cold]
    if cold:
        lines += ["", "Cold start (test target, only the last k history items as input):", "",
                  "| dataset | model | k | recall@10 | ndcg@10 |", "|---|---|---|---|---|"]
        for r in cold:
            for key, m in r.cold.items():
                k = key.removeprefix("last")
                lines.append(f"| {r.dataset} | {r.model} | {k} | {m['recall@10']:.4f} "
                             f"| {m['ndcg@10']:.4f} |")
    return "\n".join(lines)


def bar_chart(results: Sequence[ModelResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if not r.skipped]
    datasets = list(dict.fromkeys(r.dataset for r in done))
    models = list(dict.fromkeys(r.model for r in done))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(models))
    for ax, metric in zip(axes, ("ndcg@10", "recall@10"), strict=True):
        for m, model in enumerate(models):
            values = [next((r.test[metric] for r in done if r.dataset == d and r.model == model),
                           0.0) for d in datasets]
            xs = [i + (m - (len(models) - 1) / 2) * width for i in range(len(datasets))]
            ax.bar(xs, values, width, label=model)
        ax.set_xticks(range(len(datasets)), datasets)
        ax.set_title(f"test {metric} (full ranking)")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(
    results: Sequence[ModelResult], out: Path, wall_seconds: float, settings: dict[str, Any]
) -> str:
    """Write the three files under ``out`` and return the table text."""
    out.mkdir(parents=True, exist_ok=True)
    text = table(results)
    payload = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": wall_seconds,
        "machine": platform.platform(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "protocol": "full ranking; history items excluded except the target; pessimistic ties;"
                    " best grid point by valid ndcg@10, reported on test",
        "results": [asdict(r) for r in results],
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (out / "table.md").write_text(text + f"\n\nWall time: {wall_seconds:.0f} s\n",
                                  encoding="utf-8")
    if any(not r.skipped for r in results):
        bar_chart(results, out / "ndcg.png")
    return text
