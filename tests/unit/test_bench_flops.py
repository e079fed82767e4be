"""The hardware bound: FLOPs per text from the shapes, shapes read from a graph, CPU peaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_stream.bench.encoder import Measurement
from llmrec_stream.bench.flops import (
    Shape,
    contender_precision,
    cpu_ghz,
    hardware_report,
    hardware_table,
    peaks,
    shape_of,
)


def test_flops_of_a_tiny_shape_counted_by_hand() -> None:
    # one layer, d = 2, f = 4, 3 tokens:
    # projections 4 * (3x2 @ 2x2) = 4 * 3*2*2 MACs = 48 MACs
    # scores 3x2 @ 2x3 = 18 MACs, weights @ V 3x3 @ 3x2 = 18 MACs
    # feed-forward 3x2 @ 2x4 = 24 MACs, 3x4 @ 4x2 = 24 MACs
    macs = 48 + 18 + 18 + 24 + 24
    assert Shape(layers=1, hidden=2, ffn=4).flops(3) == 2 * macs
    assert Shape(layers=6, hidden=2, ffn=4).flops(3) == 6 * 2 * macs
    assert Shape(1, 2, 4).mean_flops([3, 3]) == 2 * macs


def test_flops_match_numpy_matmuls_counted_one_by_one() -> None:
    shape, tokens = Shape(layers=2, hidden=8, ffn=32), 5
    counted = 0
    x = np.ones((tokens, shape.hidden))
    for _layer in range(shape.layers):
        for w in [np.ones((shape.hidden, shape.hidden))] * 4 + [np.ones((shape.hidden, shape.ffn))]:
            counted += 2 * x.shape[0] * w.shape[0] * w.shape[1]
        counted += 2 * tokens * shape.hidden * tokens  # Q K^T
        counted += 2 * tokens * tokens * shape.hidden  # softmax(.) V
        counted += 2 * tokens * shape.ffn * shape.hidden  # down projection
    assert shape.flops(tokens) == counted


def _tiny_graph(path: Path, layers: int, d: int, f: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        for name, dims in ((f"q{i}", (d, d)), (f"up{i}", (d, f)), (f"down{i}", (f, d))):
            inits.append(numpy_helper.from_array(np.zeros(dims, np.float32), name))
            nodes.append(helper.make_node("MatMul", [prev, name], [f"{name}_out"]))
            prev = f"{name}_out"
    inits.append(numpy_helper.from_array(np.zeros((100, d), np.float32), "embeddings"))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, d])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, d])], inits)
    onnx.save(helper.make_model(graph), str(path))


def test_shape_is_read_from_the_graph(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    _tiny_graph(tmp_path / "m.onnx", layers=3, d=4, f=16)
    assert shape_of(tmp_path / "m.onnx") == Shape(layers=3, hidden=4, ffn=16)


def test_peaks_follow_the_flags() -> None:
    amx = peaks(["avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"], 2, 2.0)
    assert amx == {"fp32": ("fp32-avx512", 256.0), "bf16": ("bf16-amx", 4096.0),
                   "int8": ("int8-amx", 8192.0)}
    zen4 = peaks(["avx512f", "avx512_vnni", "avx512_bf16"], 2, 2.0)
    assert zen4["bf16"] == ("bf16-avx512", 512.0) and zen4["int8"] == ("int8-vnni", 1024.0)
    assert peaks(["avx2"], 1, 1.0)["int8"] == ("fp32-avx2", 32.0)


def test_contender_precision() -> None:
    assert contender_precision("onnx-int8") == "int8"
    assert contender_precision("st-onnx-int8") == "int8"
    assert contender_precision("st-openvino") == "bf16"
    assert contender_precision("onnx-fp32-openvino") == "bf16"
    assert contender_precision("st-openvino-fp32") == "fp32"
    assert contender_precision("sentence-transformers") == "fp32"


def test_cpu_ghz_reads_cpu_mhz(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: X\ncpu MHz\t\t: 2100.000\n", encoding="utf-8")
    assert cpu_ghz(info) == pytest.approx(2.1)
    info.write_text("model name\t: X\n", encoding="utf-8")
    assert cpu_ghz(info) is None


def test_report_divides_the_rate_by_the_peak(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    _tiny_graph(tmp_path / "m.onnx", layers=1, d=2, f=4)
    rows = [Measurement("onnx-int8", 32, 1e9, [1.0], None, 1.0, 1.0)]
    report = hardware_report(tmp_path / "m.onnx", rows, [3], ["avx512f", "avx512_vnni"])
    if "skipped" in report:
        pytest.skip(report["skipped"])
    (row,) = report["rows"]
    assert row["gflops"] == pytest.approx(Shape(1, 2, 4).flops(3))  # 1e9 texts/s
    assert row["fraction"] == pytest.approx(row["gflops"] / row["peak_gflops"])
    assert "GFLOP/s" in hardware_table(report)
