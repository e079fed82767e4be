"""Targeted smoothing for the int8 variant: calibrate activation ranges, then move outlier
input channels' scale into the weights (SmoothQuant, restricted to outliers; the recipe and
its figures are in `quantize`'s docstring).

Each function works on an ``onnx.ModelProto`` in memory; `quantize.quantize_artifact` writes
the result and checks it against fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Exponent of the per-channel smoothing scale ``(max / median) ** SMOOTH_ALPHA``.
SMOOTH_ALPHA = 0.5
#: Activation ranges for smoothing come from these, never from benchmark or test data.
CALIBRATION_TEXTS: tuple[str, ...] = (
    "Five Stars. Love it!",
    "Works as described. Arrived on time and well packed.",
    "Terrible quality, broke after two days. Returned it.",
    "Nice. Smells good",
    "Stainless steel digital caliper, 6 inch, LCD display. Measuring & Layout Tools. Neiko.",
    "Nitrile examination gloves, powder-free, large, box of 100. Lab Safety Supplies.",
    "I bought this for my daughter and she wears it every day; the color has not faded.",
    "Three Stars. It's ok but smaller than I expected for the price.",
    "Replacement water filter for refrigerator models listed below. Appliances. Parts.",
    "Muy buen producto, llegó rápido.",
    "東京は日本の首都です。",
    "🙂🚀 emoji and symbols #hashtag @user https://example.com/p?q=1",
    "",
    "a",
    "1234567890 3.14159 2024-05-01",
    "UPPER CASE and lower case MiXeD",
    " ".join(["The dryer stopped heating after a month and support never answered."] * 30),
    "Perfect fit. Exactly what I needed!!!",
)


def initializers(model: Any) -> dict[str, Any]:
    return {i.name: i for i in model.graph.initializer}


def quantizable(model: Any) -> list[Any]:
    return [n for n in model.graph.node if n.op_type in ("MatMul", "Attention")]


def feeds_weights(model: Any, node: Any) -> bool:
    return len(node.input) > 1 and node.input[1] in initializers(model)


def first_ffn_output(model: Any) -> list[str]:
    """The first MatMul that reads a BiasGelu output: layer 0's FFN output projection."""
    gelu_outputs = {o for n in model.graph.node if n.op_type == "BiasGelu" for o in n.output}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[0] in gelu_outputs:
            return [node.name]
    return []


def calibrate(artifact_dir: Path, model: Any, tensors: list[str]) -> dict[str, np.ndarray]:
    """Per-channel max |x| of each tensor over `CALIBRATION_TEXTS`, one text per run."""
    import onnx
    import onnxruntime as ort

    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in tensors:
        probe.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    encoder = OnnxTextEncoder.load(artifact_dir, device="cpu", verify=False)
    ranges: dict[str, np.ndarray] = {}
    for encoding in encoder._tokenizer.encode_batch(list(CALIBRATION_TEXTS)):  # noqa: SLF001
        feeds = encoder._feeds([encoding])  # noqa: SLF001
        for name, value in zip(tensors, session.run(tensors, feeds), strict=True):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            ranges[name] = np.maximum(ranges.get(name, peak), peak)
    return ranges


def smooth(model: Any, targets: list[Any], ranges: dict[str, np.ndarray], alpha: float) -> int:
    """Divide outlier input channels by s (a Mul), multiply the weight rows by s; in place."""
    from onnx import helper, numpy_helper
    from onnxruntime.transformers.onnx_model import OnnxModel

    inits = initializers(model)
    count = 0
    for node in targets:
        peak = np.maximum(ranges[node.input[0]], 1e-6)
        scale = np.maximum(1.0, peak / np.median(peak)) ** alpha
        if not np.any(scale > 1.0):
            continue
        weight = inits[node.input[1]]
        w = numpy_helper.to_array(weight).astype(np.float32)
        weight.CopyFrom(
            numpy_helper.from_array((w * scale[:, None]).astype(np.float32), weight.name)
        )
        inv = f"{node.name}/smooth_inv_scale"
        model.graph.initializer.append(
            numpy_helper.from_array((1.0 / scale).astype(np.float32), inv)
        )
        smoothed = f"{node.name}/smoothed_input"
        model.graph.node.append(
            helper.make_node("Mul", [node.input[0], inv], [smoothed], name=f"{node.name}/smooth")
        )
        node.input[0] = smoothed
        count += 1
    OnnxModel(model).topological_sort()
    return count
