"""Item text vectors from the project's ONNX encoder, cached on disk by content hash.

Row 0 of the returned matrix is the padding item (zeros), row ``i`` the text of item ``i``;
items with empty text get zeros too, so they fall back to their id embedding alone.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt

from llmrec_stream.datasets.sequences import SeqDataset

log = logging.getLogger(__name__)


def text_vectors(
    data: SeqDataset, encoder_dir: Path, cache_dir: Path | None = None, threads: int = 2
) -> npt.NDArray[np.float32] | None:
    """(n_items + 1, dim) float32, or None when the data set carries no item text."""
    if data.item_text is None or not any(data.item_text):
        return None
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    manifest = (Path(encoder_dir) / "manifest.json").read_bytes()
    key = hashlib.sha256(manifest + "\x00".join(data.item_text).encode()).hexdigest()[:16]
    cached = None if cache_dir is None else Path(cache_dir) / f"text-{data.name}-{key}.npy"
    if cached is not None and cached.is_file():
        return np.load(cached)
    encoder = OnnxTextEncoder.load(Path(encoder_dir), device="cpu", intra_op_threads=threads)
    log.info("encoding %d item texts with %s", data.n_items, encoder.name)
    present = [i for i, t in enumerate(data.item_text) if t]
    out = np.zeros((data.n_items + 1, encoder.dim), dtype=np.float32)
    out[np.array(present) + 1] = encoder.encode([data.item_text[i] for i in present])
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, out)
    return out
