"""Results on disk: ``results.json`` (everything), ``table.md`` (what is printed), ``ndcg.png``,
``user_ndcg.npz`` (per-user test NDCG@10 per model, the bootstrap's input)."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_stream.eval.outcomes import Comparison, ModelResult
from llmrec_stream.results import write_json

COLUMNS: tuple[str, ...] = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
#: The per-user arrays' file; `eval.merge` reads back what `write_results` writes here.
ARRAYS_FILE = "user_ndcg.npz"
COUNT_ONLY = "¹"
COUNT_ONLY_NOTE = (f"{COUNT_ONLY} alignment checked by user count only (run predates the "
                   "fingerprint)")


def row_key(r: ModelResult) -> str:
    """A row's name in the per-user arrays file and in messages: ``dataset/model``."""
    return f"{r.dataset}/{r.model}"


def _pm(r: ModelResult, c: str) -> str:
    sd = r.test_sd.get(c, 0.0)
    return f"{r.test[c]:.4f} ± {sd:.4f}" if len(r.seeds) > 1 else f"{r.test[c]:.4f}"


def point(params: Mapping[str, Any]) -> str:
    """A grid point in one cell: ``factors 256, lr 0.05``; a component's point in brackets."""
    parts = []
    for key, value in params.items():
        if isinstance(value, Mapping):
            parts.append(f"{key} ({point(value)})")
        else:
            parts.append(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts).replace("|", "/") or "–"


def table(results: Sequence[ModelResult], comparisons: Sequence[Comparison] = ()) -> str:
    """Markdown: test metrics (mean ± sd over seeds), the CIs, then cold-start rows."""
    head = ("| dataset | model | " + " | ".join(COLUMNS) + " | ndcg@10 unmasked (RecBole-style) "
            "| valid ndcg@10 | grid points tried | seeds | chosen point | seconds |")
    lines = [head, "|" + "---|" * (len(COLUMNS) + 8)]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.dataset} | {r.model} | skipped: {r.skipped} |")
            continue
        cells = " | ".join(_pm(r, c) for c in COLUMNS)
        seeds = "deterministic" if r.deterministic else ",".join(map(str, r.seeds))
        lines.append(f"| {r.dataset} | {r.model} | {cells} | {r.unmasked['ndcg@10']:.4f} "
                     f"| {r.valid['ndcg@10']:.4f} | {len(r.tried)} | {seeds} "
                     f"| {point(r.params)} | {r.seconds:.0f} |")
    if comparisons:
        lines += ["", "Paired per-user bootstrap, 95 % CI of the test NDCG@10 difference "
                  "(reference minus other; per-user values averaged over seeds):", "",
                  "| dataset | reference | other | difference | 95 % CI | significant |",
                  "|---|---|---|---|---|---|"]
        fingerprints = {(r.dataset, r.model): r.users_sha256 for r in results}
        count_only = False
        for c in comparisons:
            tag = " (best peer on validation)" if c.best_peer else ""
            if not (fingerprints.get((c.dataset, c.reference))
                    and fingerprints.get((c.dataset, c.other))):
                tag, count_only = f"{tag} {COUNT_ONLY}", True
            lines.append(f"| {c.dataset} | {c.reference} | {c.other}{tag} | {c.diff:+.4f} "
                         f"| [{c.low:+.4f}, {c.high:+.4f}] | {'yes' if c.significant else 'no'} |")
        if count_only:
            lines += ["", COUNT_ONLY_NOTE]
    unpaired = [row_key(r) for r in results
                if not r.skipped and r.user_ndcg is None]
    if unpaired:
        lines += ["", "Not compared (no per-user array): " + ", ".join(unpaired) + "."]
    cold = [r for r in results if r.cold]
    if cold:
        lines += ["", "Cold start (test target, only the last k history items as input, seed-0 "
                  "test model):", "", "| dataset | model | k | recall@10 | ndcg@10 |",
                  "|---|---|---|---|---|"]
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
            pick = [next((r for r in done if r.dataset == d and r.model == model), None)
                    for d in datasets]
            values = [r.test[metric] if r else 0.0 for r in pick]
            errs = [r.test_sd.get(metric, 0.0) if r else 0.0 for r in pick]
            xs = [i + (m - (len(models) - 1) / 2) * width for i in range(len(datasets))]
            ax.bar(xs, values, width, yerr=errs, label=model)
        ax.set_xticks(range(len(datasets)), datasets)
        ax.set_title(f"test {metric} (full ranking, mean ± sd over seeds)")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(
    results: Sequence[ModelResult], comparisons: Sequence[Comparison], out: Path,
    wall_seconds: float, settings: dict[str, Any], *,
    sources: Mapping[tuple[str, str], str] | None = None, notes: Sequence[str] = (),
) -> str:
    """Write the files under ``out`` and return the table text.

    A merge of several runs (`eval.merge`) passes ``sources``, the folder each (dataset,
    model) row came from (written into its row), and ``notes``, printed under the table.
    """
    out.mkdir(parents=True, exist_ok=True)
    text = table(results, comparisons)
    if notes:
        text += "\n\n" + "\n".join(notes)
    rows = []
    for r in results:
        row = asdict(r)
        row.pop("user_ndcg")
        if sources is not None:
            row["source"] = sources[(r.dataset, r.model)]
        rows.append(row)
    payload = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": wall_seconds,
        "machine": platform.platform(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "protocol": "full ranking; all history masked (a repeated target too), unmasked figure "
                    "beside; pessimistic ties; grid point chosen on valid ndcg@10 (seed 0); "
                    "every test model refit on train + valid; mean ± sd over seeds; paired "
                    "per-user bootstrap CI of the ndcg@10 difference",
        "results": rows,
        "comparisons": [asdict(c) for c in comparisons],
    }
    write_json(out / "results.json", payload)
    (out / "table.md").write_text(text + f"\n\nWall time: {wall_seconds:.0f} s\n",
                                  encoding="utf-8")
    per_user = {row_key(r): r.user_ndcg for r in results
                if r.user_ndcg is not None}
    if per_user:
        np.savez_compressed(out / ARRAYS_FILE, **per_user)  # type: ignore[arg-type]
    if any(not r.skipped for r in results):
        bar_chart(results, out / "ndcg.png")
    return text
