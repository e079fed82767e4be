"""`bench encoder` on a tiny input: the fused and int8 artifact, the peer, files and verdicts.

Not a timed test: it checks that the benchmark runs and writes well-formed output, and that
the optimised graphs it measures agree with the exported one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from llmrec_stream.bench.texts import DEFAULT_DATA_DIR

pytest_plugins = ["tests.encoder_fixtures"]
pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEXTS = [
    "Five Stars. Love it!",
    "The tent leaked during the first storm, very disappointing.",
    "Stainless steel digital caliper, 6 inch. Measuring & Layout Tools.",
    "",
    " ".join(["long review text that keeps going and going"] * 80),
]


@pytest.fixture(scope="module")
def optimised_dir(encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's artifact, fused and with its int8 variant (the copy keeps the
    shared one as exported)."""
    from llmrec_stream.encoder.quantize import quantize_artifact

    path = tmp_path_factory.mktemp("optimised") / "artifact"
    shutil.copytree(encoder_dir, path)
    report = quantize_artifact(path)
    assert report.fused and report.min_cosine >= 0.98
    assert report.fp32_nodes and report.smoothed_inputs > 0
    return path


def test_fused_graph_matches_the_export(encoder_dir: Path, optimised_dir: Path) -> None:
    import onnx

    from llmrec_stream.encoder.artifact import verify_artifact
    from llmrec_stream.encoder.quantize import FUSED_KEY, fuse_artifact
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    manifest = verify_artifact(optimised_dir)  # re-hashed after every rewrite
    assert {"model.onnx", "model.int8.onnx"} <= set(manifest.files)
    model = onnx.load(str(optimised_dir / "model.onnx"))
    assert any(p.key == FUSED_KEY for p in model.metadata_props)
    ops = {n.op_type for n in model.graph.node}
    assert {"Attention", "LayerNormalization"} <= ops and "SkipLayerNormalization" not in ops
    assert fuse_artifact(optimised_dir).max_abs_diff == 0.0  # already fused: a no-op
    exported = OnnxTextEncoder.load(encoder_dir, device="cpu").encode(TEXTS)
    fused = OnnxTextEncoder.load(optimised_dir, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(fused, exported, atol=1e-4)
    int8 = OnnxTextEncoder.load(optimised_dir, device="cpu", precision="int8").encode(TEXTS)
    assert float(np.min(np.sum(int8 * exported, axis=1))) >= 0.98


def test_cpu_sessions_keep_add_and_layer_norm_apart(optimised_dir: Path, tmp_path: Path) -> None:
    """onnxruntime would fuse them again at load into its slow CPU SkipLayerNormalization."""
    import onnx

    from llmrec_stream.encoder.runtime import create_session, session_options

    for name in ("model.onnx", "model.int8.onnx"):
        options = session_options(intra_op_threads=1)
        options.optimized_model_filepath = str(tmp_path / f"loaded-{name}")
        create_session(optimised_dir / name, device="cpu", options=options)
        ops = {n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}
        assert "LayerNormalization" in ops and "SkipLayerNormalization" not in ops, (name, ops)


def test_io_binding_path_matches_plain_runs(optimised_dir: Path) -> None:
    from llmrec_stream.bench.cuda import IoBoundContender
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    bound = IoBoundContender(optimised_dir, optimised_dir / "model.onnx", name="io", device="cpu")
    plain = OnnxTextEncoder.load(optimised_dir, device="cpu")
    np.testing.assert_allclose(bound.encode(TEXTS, 2), plain.encode(TEXTS), atol=1e-6)
    assert bound.encode([], 2).shape == (0, plain.dim)


def test_fp16_conversion_keeps_float32_io(optimised_dir: Path, tmp_path: Path) -> None:
    import onnx

    from llmrec_stream.bench.cuda import fp16_model

    path = fp16_model(optimised_dir, tmp_path)
    assert fp16_model(optimised_dir, tmp_path) == path  # cached by the fp32 graph's hash
    graph = onnx.load(str(path)).graph
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)


@pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "scientific").is_dir(),
    reason=f"shared data not found at {DEFAULT_DATA_DIR}",
)
def test_bench_encoder_command_writes_json_and_png(optimised_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="the peer needs sentence-transformers")
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from llmrec_stream.bench.cli import bench_group

    out = tmp_path / "results"
    run = CliRunner().invoke(
        bench_group,
        [
            "encoder",
            "--artifact",
            str(optimised_dir),
            "--texts",
            "12",
            "--batch-sizes",
            "1,4",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--peers",
            "none",
            "--out",
            str(out),
        ],
    )
    assert run.exit_code == 0, run.output
    assert "onnx-int8" in run.output and "x peer" in run.output
    assert "load average" in run.output and "cpu: " in run.output
    body = json.loads((out / "encoder.json").read_text())
    assert body["texts"] == 12 and body["threads"] == 1 and body["artifact"]["fused"]
    rows = {(m["contender"], m["batch_size"]): m for m in body["measurements"]}
    assert set(rows) == {
        (c, b) for c in ("sentence-transformers", "onnx-fp32", "onnx-int8") for b in (1, 4)
    }
    assert rows[("onnx-fp32", 4)]["cos_min"] > 0.9999
    assert rows[("onnx-int8", 4)]["cos_min"] > 0.95
    assert all(m["texts_per_s"] > 0 and m["speedup_vs_peer"] > 0 for m in rows.values())
    assert set(body["verdicts"]) == {"onnx-fp32", "onnx-int8"}
    assert body["profiles"]["onnx-int8"]["by_provider_s"]["CPUExecutionProvider"] > 0
    assert (out / "encoder.png").read_bytes()[:8] == PNG_MAGIC
    # the hardware bound: FLOPs from the graph's shapes, the CPU's peaks (issue 17)
    hardware = body["hardware"]
    if "skipped" not in hardware:
        assert hardware["shape"] == {"layers": 6, "hidden": 384, "ffn": 1536}
        assert "GFLOP/s" in run.output and "of its peak" in run.output
        assert {(r["contender"], r["batch"]) for r in hardware["rows"]} == set(rows)
        assert all(0 < r["fraction"] < 1 and r["gflops"] > 0 for r in hardware["rows"])
