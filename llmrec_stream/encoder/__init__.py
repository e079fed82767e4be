"""Text encoder: the `TextEncoder` contract, the ONNX artifact, its runtime and its export.

Importing this package stays cheap: onnxruntime loads on first use of `OnnxTextEncoder`, and
torch only on first use of `export_encoder`, so workers and tools pay only for what they touch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llmrec_stream.encoder.artifact import (
    ArtifactError,
    Manifest,
    default_encoder_dir,
    read_manifest,
    verify_artifact,
    write_manifest,
)
from llmrec_stream.encoder.protocol import TextEncoder

if TYPE_CHECKING:
    from llmrec_stream.encoder.export import ExportError, ExportReport, export_encoder
    from llmrec_stream.encoder.runtime import EncoderRuntimeError, OnnxTextEncoder

_LAZY: dict[str, str] = {
    "OnnxTextEncoder": "llmrec_stream.encoder.runtime",
    "EncoderRuntimeError": "llmrec_stream.encoder.runtime",
    "export_encoder": "llmrec_stream.encoder.export",
    "ExportReport": "llmrec_stream.encoder.export",
    "ExportError": "llmrec_stream.encoder.export",
}

__all__ = [
    "ArtifactError",
    "EncoderRuntimeError",
    "ExportError",
    "ExportReport",
    "Manifest",
    "OnnxTextEncoder",
    "TextEncoder",
    "default_encoder_dir",
    "export_encoder",
    "read_manifest",
    "verify_artifact",
    "write_manifest",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
