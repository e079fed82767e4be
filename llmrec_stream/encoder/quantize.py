"""The opt-in int8 variant of an exported encoder: per-channel dynamic quantization.

Needs only onnxruntime (its quantization tools), so it can run wherever the artifact is. The
int8 graph sits beside the fp32 one in the same artifact, hashed in the same manifest, and is
checked against it: its embeddings must keep a minimum cosine similarity to fp32's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmrec_stream.encoder.artifact import (
    INT8_MODEL_NAME,
    ArtifactError,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)

#: int8 must stay this close to fp32 on the check texts, or the variant is refused.
MIN_COSINE = 0.97
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
    min_cosine: float
    mean_cosine: float


def quantize_artifact(artifact_dir: Path) -> QuantReport:
    """Write ``model.int8.onnx`` beside ``model.onnx`` and re-hash the manifest."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    quantize_dynamic(
        str(artifact_dir / "model.onnx"),
        str(artifact_dir / INT8_MODEL_NAME),
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    fp32 = OnnxTextEncoder.load(artifact_dir, device="cpu", verify=False).encode(CHECK_TEXTS)
    int8 = OnnxTextEncoder.load(artifact_dir, device="cpu", verify=False, precision="int8")
    cos = np.sum(fp32 * int8.encode(CHECK_TEXTS), axis=1)
    report = QuantReport(float(cos.min()), float(cos.mean()))
    if report.min_cosine < MIN_COSINE:
        (artifact_dir / INT8_MODEL_NAME).unlink()
        raise ArtifactError(f"int8 variant too far from fp32: min cosine {report.min_cosine:.4f}")
    write_manifest(
        artifact_dir,
        source=manifest.source,
        dim=manifest.dim,
        max_length=manifest.max_length,
        opset=manifest.opset,
        max_abs_diff_vs_torch=manifest.max_abs_diff_vs_torch,
        input_names=manifest.input_names,
        output_name=manifest.output_name,
        pad_id=manifest.pad_id,
        pad_token=manifest.pad_token,
    )
    log.info("int8 variant: cosine to fp32 min %.4f mean %.4f", *(report.min_cosine,
             report.mean_cosine))
    return report
