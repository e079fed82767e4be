"""Result files and tables shared by every benchmark; the profile parser and the CUDA check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrec_stream.results import format_table, write_results


def test_format_table_aligns_numbers_right() -> None:
    table = format_table(["name", "value"], [["a", 1234.5], ["bb", 0.5], ["c", float("nan")]])
    lines = table.splitlines()
    assert lines[0].startswith("name") and set(lines[1]) <= {"-", " "}
    assert lines[2].endswith("1,234") and lines[3].endswith("0.5000") and lines[4].endswith("-")


def test_write_results_without_chart(tmp_path: Path) -> None:
    json_path, png_path = write_results(tmp_path / "new", "demo", {"figures": [1, 2]})
    assert png_path is None
    body = json.loads(json_path.read_text())
    assert body["benchmark"] == "demo" and body["figures"] == [1, 2]
    assert {"created_at", "command", "cpu", "versions"} <= set(body["environment"])


def _event(op: str, provider: str, us: int, node: str) -> dict[str, object]:
    return {
        "cat": "Node",
        "name": f"{node}_kernel_time",
        "dur": us,
        "args": {"op_name": op, "provider": provider},
    }


def test_parse_trace_and_cuda_check() -> None:
    pytest.importorskip("onnxruntime")
    from llmrec_stream.bench.cuda import ProviderError, check_cuda_ran
    from llmrec_stream.bench.profile import parse_trace

    cpu_only = parse_trace(
        [
            _event("MatMul", "CPUExecutionProvider", 3000, "mm"),
            _event("Attention", "CPUExecutionProvider", 1000, "att"),
            {"cat": "Session", "name": "model_run", "dur": 9999},
        ],
        wall_s=0.005,
    )
    assert cpu_only.kernel_s == pytest.approx(0.004)
    assert cpu_only.outside_kernels_s == pytest.approx(0.001)
    assert cpu_only.top(1) == [("MatMul", pytest.approx(0.75))]
    with pytest.raises(ProviderError, match="did not run"):
        check_cuda_ran(cpu_only)
    mixed = parse_trace(
        [
            _event("MatMul", "CUDAExecutionProvider", 30, "mm"),
            _event("Attention", "CPUExecutionProvider", 10, "att"),
        ],
        wall_s=0.001,
    )
    with pytest.raises(ProviderError):
        check_cuda_ran(mixed)
    on_gpu = parse_trace(
        [
            _event("MatMul", "CUDAExecutionProvider", 30, "mm"),
            _event("Attention", "CUDAExecutionProvider", 10, "att"),
            _event("Shape", "CPUExecutionProvider", 1, "shape"),
        ],
        wall_s=0.001,
    )
    check_cuda_ran(on_gpu)  # a CPU-side Shape op is fine
    assert on_gpu.nodes_by_provider == {"CUDAExecutionProvider": 2, "CPUExecutionProvider": 1}
