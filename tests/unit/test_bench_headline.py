"""The encoder bench's last line and its >= 0.99 rule; peers skipped, not failed, when missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmrec_stream.bench.contenders import deployed_runs
from llmrec_stream.bench.encoder import (
    EncoderBench,
    Measurement,
    headline,
    is_ours,
)
from llmrec_stream.bench.encoder_peers import PEER_NAMES, build_peers, quantization_config
from llmrec_stream.cpu import cpu_flags, has_amx_bf16


def _m(name: str, batch: int, speed: float, cos_min: float) -> Measurement:
    return Measurement(name, batch, speed, [1.0], None, cos_min, max(cos_min, 0.999))


def _bench(*rows: Measurement) -> EncoderBench:
    return EncoderBench(texts=10, token_lengths={}, threads=2, repeats=1, device="cpu",
                        devices={}, measurements=list(rows))


def test_headline_picks_the_fastest_side_at_or_above_099() -> None:
    result = _bench(
        _m("sentence-transformers", 32, 120.0, 1.0),
        _m("st-onnx-int8", 32, 190.0, 0.9736),  # faster but below the bar: not the best peer
        _m("st-openvino", 32, 360.5, 0.99996),
        _m("st-openvino", 8, 999.0, 1.0),  # another batch size: ignored
        _m("onnx-int8", 32, 721.0, 0.99),  # exactly the bar counts
        _m("onnx-fp32", 32, 150.0, 1.0),
        _m("onnx-int8-spin", 32, 900.0, 0.9899),
    )
    assert headline(result) == (
        "best peer: st-openvino 360.5 (cos min 1.0000); "
        "ours: onnx-int8 721.0 (cos min 0.9900) (2.00 x the best peer)"
    )


def test_headline_without_a_qualifying_side_says_so() -> None:
    result = _bench(_m("st-openvino", 32, 300.0, 1.0), _m("onnx-int8", 32, 700.0, 0.98))
    with pytest.raises(ValueError, match="configuration of ours"):
        headline(result)
    with pytest.raises(ValueError, match="no peer"):
        headline(_bench(_m("onnx-fp32", 32, 100.0, 1.0)))


def test_ours_and_deployed_configuration() -> None:
    assert is_ours("onnx-int8") and is_ours("onnx-fp32-spin") and not is_ours("st-onnx-fp32")
    runs, per_run, spinning = deployed_runs(2)
    assert (runs, per_run, spinning) == (2, 1, False)  # the worker's defaults on 2 cores
    assert deployed_runs(1)[:2] == (1, 1)


def test_quantization_config_follows_the_cpu(tmp_path: Path) -> None:
    assert quantization_config(["avx2", "avx512f", "avx512_vnni"]) == "avx512_vnni"
    assert quantization_config(["avx2", "avx512f"]) == "avx512"
    assert quantization_config(["avx2"]) == "avx2"
    assert quantization_config(["asimd"]) == "arm64"
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: X\nflags\t\t: fpu avx512f amx_tile amx_bf16\n")
    assert cpu_flags(info) == ["fpu", "avx512f", "amx_tile", "amx_bf16"]
    assert has_amx_bf16(cpu_flags(info)) and not has_amx_bf16(["avx512f"])


def test_a_peer_whose_package_is_missing_is_skipped_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import` raise ImportError, as when the package is absent.
    for module in ("optimum", "optimum.onnxruntime", "optimum.intel", "optimum.intel.openvino",
                   "openvino", "fastembed", "sentence_transformers"):
        monkeypatch.setitem(sys.modules, module, None)
    lines: list[str] = []
    peers, skipped = build_peers(["st-onnx-int8", "st-openvino", "fastembed"], tmp_path, 1,
                                 log=lines.append)
    assert peers == [] and set(skipped) == {"st-onnx-int8", "st-openvino", "fastembed"}
    assert all("sentence-transformers is not installed" in r for r in skipped.values())
    assert lines[0].startswith("peer st-onnx-int8 skipped: ")
    with pytest.raises(ValueError, match="unknown peer"):
        build_peers(["nope"], tmp_path, 1)


def test_without_optimum_or_fastembed_each_peer_names_its_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sentence_transformers")
    for module in ("optimum", "optimum.onnxruntime", "optimum.intel", "optimum.intel.openvino",
                   "openvino", "fastembed"):
        monkeypatch.setitem(sys.modules, module, None)
    peers, skipped = build_peers(list(PEER_NAMES), tmp_path, 1, log=lambda _l: None)
    assert peers == [] and set(skipped) == set(PEER_NAMES)
    assert "optimum.onnxruntime" in skipped["st-onnx-int8"]
    assert "optimum-intel / openvino" in skipped["st-openvino-fp32"]
    assert "fastembed" in skipped["fastembed"] or "optimum" in skipped["fastembed"]
