"""The artifact's optimised graphs: transformer fusion, then the opt-in int8 variant.

Needs only onnxruntime (its transformer optimizer and quantization tools), so it runs wherever
the artifact is. Both steps rewrite files of the artifact and re-hash its manifest, and both
are checked before anything is replaced:

1. **Fusion** (`fuse_artifact`): onnxruntime's BERT optimizer folds each layer's ~40 ops into
   EmbedLayerNormalization, Attention, BiasGelu and LayerNormalization kernels. The fused
   graph must match the exported one to 1e-4 (it is float32 all the way), and then replaces
   ``model.onnx``, so every runtime, CPU or CUDA, loads the fast graph. Its Attention kernel
   reads the mask as per-row lengths: padding must be on the right, as the runtime pads.
   Residual Add + LayerNormalization stay two ops: onnxruntime's CPU SkipLayerNormalization
   kernel took 1.48 s where Add + LayerNormalization take 0.34 s (int8, 600 texts, batch 8,
   one thread; about 20 % of all kernel time). CPU sessions are told not to fuse them again
   at load; CUDA sessions are left free to (`runtime.create_session`; not measured on a GPU).
2. **int8** (`quantize_artifact`): per-channel dynamic quantization of the fused graph's
   MatMul and Attention weights (``model.int8.onnx``). Activations are quantized per tensor,
   at run time, over the whole batch; BERT's LayerNorm and GELU outputs carry a few channels
   up to 15x larger than the rest, which set that range and cost every other channel its
   resolution (min cosine to fp32 about 0.97 on real reviews). So, before quantizing:

   * *targeted smoothing* (SmoothQuant, restricted to outliers): each quantized input channel
     whose calibrated max exceeds the channel median is divided by
     ``(max / median) ** SMOOTH_ALPHA`` through a Mul in front of the op, and the matching
     weight row is multiplied back. Ordinary channels are left alone (a scale below 1 would
     amplify channels the calibration texts never woke);
   * the first layer's FFN output MatMul stays float32: it alone added ~20% of the remaining
     error in a per-node sensitivity sweep, for ~5% of the matmul work.

   On 1,200 real review and item texts (not the benchmark's) this lifts the min cosine to the
   fp32 PyTorch vectors from 0.972 to 0.991 and the mean from 0.993 to 0.998.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.encoder.artifact import (
    INT8_MODEL_NAME,
    MODEL_NAME,
    ArtifactError,
    Manifest,
    read_manifest,
    rehash_manifest,
)
from llmrec_stream.encoder.smoothing import (
    CALIBRATION_TEXTS,
    SMOOTH_ALPHA,
    calibrate,
    feeds_weights,
    first_ffn_output,
    quantizable,
    smooth,
)

log = logging.getLogger(__name__)

#: int8 must stay this close to fp32 on the check texts, or the variant is refused.
MIN_COSINE = 0.98
#: Largest |fused - exported| accepted (the export's own tolerance against PyTorch).
FUSION_TOLERANCE = 1e-4
#: all-MiniLM-L6-v2 (and BERT-base) attention heads; the hidden size comes from the manifest.
DEFAULT_NUM_HEADS = 12
#: Graph metadata key marking a fused model.onnx, so fusing twice is a no-op.
FUSED_KEY = "llmrec.fused"
CHECK_TEXTS: tuple[str, ...] = (
    "Great running shoes, light and comfortable for long distances.",
    "The coffee beans taste burnt and bitter; I would not buy them again.",
    "This moisturizer fixed my dry skin within a week.",
    "A thrilling space opera with a clever time-travel twist.",
    "这款咖啡豆香气浓郁,非常适合做拿铁。",
    "The tent leaked during the first storm, very disappointing.",
    "Sharp chef knife, holds its edge, well balanced in the hand.",
    "ok",
)
@dataclass(frozen=True, slots=True)
class QuantReport:
    """int8 vs fp32 cosine on `CHECK_TEXTS`, and what the recipe kept or changed."""

    min_cosine: float
    mean_cosine: float
    fused: bool = False
    smoothed_inputs: int = 0
    fp32_nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FuseReport:
    """What `fuse_artifact` did; `max_abs_diff` is |fused - exported| on the check texts."""

    fused: bool
    max_abs_diff: float
    fused_ops: dict[str, int]


def fuse_artifact(artifact_dir: Path, *, num_heads: int = DEFAULT_NUM_HEADS) -> FuseReport:
    """Replace ``model.onnx`` with its transformer-fused graph (see the module docstring).

    A no-op on a graph fused before. Refuses, leaving the artifact as it was, when the fused
    graph disagrees with the exported one; returns ``fused=False`` when nothing fused.
    """
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    src = artifact_dir / MODEL_NAME
    if _is_fused(onnx.load(str(src), load_external_data=False)):
        return FuseReport(True, 0.0, {})
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False
    optimized = optimize_model(
        str(src), model_type="bert", num_heads=num_heads, hidden_size=manifest.dim, opt_level=0,
        optimization_options=options,
    )
    stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    if not stats.get("Attention") and not stats.get("MultiHeadAttention"):
        log.warning("transformer fusion found no attention to fuse in %s; kept as exported", src)
        return FuseReport(False, 0.0, stats)
    onnx.helper.set_model_props(optimized.model, {FUSED_KEY: "bert"})
    with tempfile.TemporaryDirectory(dir=artifact_dir, prefix=".fuse-") as tmp:
        fused_path = Path(tmp) / MODEL_NAME
        optimized.save_model_to_file(str(fused_path))
        texts = CHECK_TEXTS + CALIBRATION_TEXTS
        before = _encode(artifact_dir, src, texts)
        after = _encode(artifact_dir, fused_path, texts)
        diff = float(np.max(np.abs(before - after)))
        if not diff <= FUSION_TOLERANCE:
            raise ArtifactError(
                f"fused graph differs from the exported one by {diff:.3g} > {FUSION_TOLERANCE} "
                f"(wrong num_heads={num_heads}?); {src} left unfused"
            )
        os.replace(fused_path, src)
    _rehash(artifact_dir, manifest, extra_diff=diff)
    log.info("fused %s: %s; max |fused - exported| %.2e", src, stats, diff)
    return FuseReport(True, diff, stats)


def quantize_artifact(artifact_dir: Path) -> QuantReport:
    """Fuse ``model.onnx`` if needed, then write ``model.int8.onnx`` and re-hash the manifest."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    artifact_dir = Path(artifact_dir)
    fused = fuse_artifact(artifact_dir).fused
    manifest = read_manifest(artifact_dir)
    model = onnx.load(str(artifact_dir / MODEL_NAME))
    keep_fp32 = first_ffn_output(model) if fused else []
    targets = [
        n for n in quantizable(model) if n.name not in keep_fp32 and feeds_weights(model, n)
    ]
    ranges = calibrate(artifact_dir, model, sorted({n.input[0] for n in targets}))
    smoothed = smooth(model, targets, ranges, SMOOTH_ALPHA)
    dst = artifact_dir / INT8_MODEL_NAME
    with tempfile.TemporaryDirectory(dir=artifact_dir, prefix=".quant-") as tmp:
        smooth_path = Path(tmp) / "smoothed.onnx"
        onnx.save(model, str(smooth_path))
        quantize_dynamic(
            str(smooth_path),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=keep_fp32,
            # contrib ops (Attention, BiasGelu) defeat ONNX shape inference: say it is float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    fp32 = _encode(artifact_dir, artifact_dir / MODEL_NAME, CHECK_TEXTS)
    int8 = _encode(artifact_dir, dst, CHECK_TEXTS)
    cos = np.sum(fp32 * int8, axis=1)
    report = QuantReport(float(cos.min()), float(cos.mean()), fused, smoothed, tuple(keep_fp32))
    if report.min_cosine < MIN_COSINE:
        dst.unlink()
        raise ArtifactError(f"int8 variant too far from fp32: min cosine {report.min_cosine:.4f}")
    _rehash(artifact_dir, manifest)
    log.info(
        "int8 variant: cosine to fp32 min %.4f mean %.4f (%d inputs smoothed, fp32: %s)",
        report.min_cosine,
        report.mean_cosine,
        smoothed,
        keep_fp32,
    )
    return report


def _is_fused(model: Any) -> bool:
    return any(p.key == FUSED_KEY for p in model.metadata_props)


def _encode(artifact_dir: Path, model_path: Path, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    from llmrec_stream.encoder.runtime import OnnxTextEncoder, create_session

    encoder = OnnxTextEncoder.load(artifact_dir, device="cpu", verify=False)
    encoder._session = create_session(model_path, device="cpu")  # noqa: SLF001
    return encoder.encode(list(texts))


def _rehash(artifact_dir: Path, manifest: Manifest, *, extra_diff: float = 0.0) -> None:
    # the fused graph's distance to torch is bounded by export's plus fusion's
    rehash_manifest(artifact_dir, manifest,
                    max_abs_diff_vs_torch=manifest.max_abs_diff_vs_torch + extra_diff)
