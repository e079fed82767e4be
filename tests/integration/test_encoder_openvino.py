"""The OpenVINO backend of the encoder runtime: same vectors as onnxruntime's fp32, and a clear
refusal where it cannot run. Runs where the `openvino` extra is installed (skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_stream.encoder.runtime import EncoderRuntimeError, OnnxTextEncoder

pytest_plugins = ["tests.encoder_fixtures"]

TEXTS = [
    "Five Stars. Love it!",
    "The tent leaked during the first storm, very disappointing.",
    "",
    " ".join(["long review text that keeps going and going"] * 80),
]


def test_openvino_backend_matches_onnxruntime_fp32(encoder_dir: Path) -> None:
    pytest.importorskip("openvino", reason="the OpenVINO backend needs the `openvino` extra")
    reference = OnnxTextEncoder.load(encoder_dir, device="cpu").encode(TEXTS)
    for runs in (1, 2):
        enc = OnnxTextEncoder.load(encoder_dir, device="cpu", backend="openvino",
                                   parallel_runs=runs, intra_op_threads=1)
        assert enc.providers == ["OpenVINO"]
        vectors = enc.encode(TEXTS)
        enc.close()
        # bf16 on AMX, fp32 elsewhere: either way the same direction as fp32
        assert float(np.min(np.sum(vectors * reference, axis=1))) >= 0.999
        assert vectors.shape == reference.shape and enc.encode([]).shape == (0, enc.dim)


def test_openvino_backend_refuses_what_it_cannot_run(encoder_dir: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        OnnxTextEncoder.load(encoder_dir, device="cpu", backend="tensorrt")
    try:
        import openvino  # noqa: F401
    except ImportError:
        with pytest.raises(EncoderRuntimeError, match="openvino package is not installed"):
            OnnxTextEncoder.load(encoder_dir, device="cpu", backend="openvino")
        # auto without openvino is onnxruntime, as before
        assert OnnxTextEncoder.load(encoder_dir, device="cpu", backend="auto").providers == [
            "CPUExecutionProvider"
        ]
    else:
        with pytest.raises(EncoderRuntimeError, match="fp32 graph on CPU only"):
            OnnxTextEncoder.load(encoder_dir, device="cpu", backend="openvino",
                                 precision="int8")


def test_the_worker_loads_the_backend_its_settings_name(encoder_dir: Path) -> None:
    """`LLMREC_ENCODER_BACKEND` reaches the worker's encoder: an explicit onnxruntime runs
    there; an explicit openvino runs OpenVINO or, without the extra, stops the start naming it."""
    from llmrec_stream.config import Settings
    from llmrec_stream.worker import load_encoder

    base = {"encoder_dir": str(encoder_dir), "encoder_device": "cpu"}
    enc = load_encoder(Settings(**base, encoder_backend="onnxruntime"))
    assert enc.providers == ["CPUExecutionProvider"]
    try:
        import openvino  # noqa: F401
    except ImportError:
        with pytest.raises(EncoderRuntimeError, match="extra `openvino`"):
            load_encoder(Settings(**base, encoder_backend="openvino"))
    else:
        assert load_encoder(Settings(**base, encoder_backend="openvino")).providers == [
            "OpenVINO"
        ]
