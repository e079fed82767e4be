"""What every benchmark and evaluation leaves behind: a JSON of its figures, a PNG chart and a
printed table (`bench/` and `eval/` both write through here).

The JSON carries the machine, the library versions and the exact command line, because a
figure without them cannot be compared with the next run. Charts use matplotlib's Agg
backend (no display), imported only here and only when a chart is drawn.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_RESULTS_DIR = Path("bench-results")
_VERSIONS = (
    "llmrec-stream",
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "sentence-transformers",
    "transformers",
    "faiss-cpu",
    "matplotlib",
    "openvino",
    "optimum",
    "optimum-intel",
    "optimum-onnx",
    "fastembed",
)


def environment() -> dict[str, Any]:
    """Machine and library versions, so a result file explains itself."""
    versions: dict[str, str] = {}
    for dist in _VERSIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_results(
    out_dir: Path,
    name: str,
    payload: dict[str, Any],
    chart: Callable[[Figure], None] | None = None,
) -> tuple[Path, Path | None]:
    """Write ``<name>.json`` (payload plus `environment`) and ``<name>.png``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = {"benchmark": name, "environment": environment(), **payload}
    json_path = out_dir / f"{name}.json"
    write_json(json_path, body)
    png_path: Path | None = None
    if chart is not None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 4.5), layout="constrained")
        chart(fig)
        png_path = out_dir / f"{name}.png"
        fig.savefig(png_path, dpi=110)
    return json_path, png_path


def write_json(path: Path, body: dict[str, Any]) -> None:
    """``body`` as indented JSON at ``path``, replaced in one step (a reader never sees half)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (numbers right-aligned), for the terminal and for logs."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: a figure that was not measured
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)
