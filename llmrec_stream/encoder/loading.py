"""The worker's encoder from settings: where its artifact lies, its identity, and loading it.

The worker, the benchmarks and the Faust wiring all load the encoder the same way, so this
sits below all of them (a benchmark that imported the worker for it pulled the whole pipeline
assembly into its import graph).
"""

from __future__ import annotations

import logging
from pathlib import Path

from llmrec_stream.config import Settings
from llmrec_stream.encoder.artifact import default_encoder_dir, encoder_identity, read_manifest
from llmrec_stream.encoder.protocol import TextEncoder

log = logging.getLogger(__name__)


def encoder_path(settings: Settings) -> Path:
    return Path(settings.encoder.dir) if settings.encoder.dir else default_encoder_dir()


def encoder_id(settings: Settings) -> str:
    """The identity of the encoder `load_encoder` loads for these settings (`encoder_identity`
    of its artifact's manifest and the precision): what the catalog and profiles record."""
    return encoder_identity(read_manifest(encoder_path(settings)), settings.encoder.precision)


def load_encoder(settings: Settings) -> TextEncoder:
    """The ONNX encoder from its exported artifact (onnxruntime + tokenizers only)."""
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    path = encoder_path(settings)
    if not (path / "manifest.json").exists():
        raise RuntimeError(
            f"no exported encoder at {path}: run `llmrec-stream export-encoder` first"
        )
    encoder = OnnxTextEncoder.load(
        path,
        device=settings.encoder.device,
        intra_op_threads=settings.encoder.threads or None,
        precision=settings.encoder.precision,
        spinning=settings.encoder.spinning,
        parallel_runs=settings.encoder.parallel_runs,
        backend=settings.encoder.backend,
    )
    log.info("encoder %s dim=%d providers=%s", path, encoder.dim, encoder.providers)
    return encoder
