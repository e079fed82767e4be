"""Export a trained model to the serving artifact, check ONNX against PyTorch, write the manifest.

The artifact layout is defined by `llmrec_stream.ranking.model`, which loads it. The export
goes to a temporary sibling folder that is renamed into place only after the ONNX graph
matches PyTorch within ``tolerance`` on sample batches, so a half-written or wrong model never
sits where a worker would look.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from llmrec_stream.ranking.model import (
    FORMAT_VERSION,
    ITEM_IDS,
    ITEM_TEXT,
    ITEMS,
    MANIFEST,
    MODEL,
    sha256_file,
)
from llmrec_stream.trainer.fused_map import FusedMap
from llmrec_stream.trainer.hybrid import HybridSeq, UserTower

OPSET = 17
TOLERANCE = 1e-4


class ExportMismatchError(RuntimeError):
    """The ONNX graph does not reproduce the PyTorch model."""


def _sample_items(n_items: int, batch: int, length: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    items = torch.randint(1, n_items + 1, (batch, length), generator=gen)
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    cols = torch.arange(length)[None, :]
    return torch.where(cols >= (length - lengths)[:, None], items, 0)  # left padding


def _check(session: Any, feeds: dict[str, npt.NDArray[Any]], expected: np.ndarray) -> float:
    (got,) = session.run(["query"], feeds)
    return float(np.max(np.abs(got - expected))) if expected.size else 0.0


def export_seq(net: HybridSeq, path: Path, seed: int = 0) -> float:
    """Write the user tower of ``net`` to ``path``; return the max |ONNX - torch| seen."""
    import onnxruntime as ort

    net.eval()
    tower = UserTower(net).eval()
    names = ["items", "item_text"] if net.text_dim else ["items"]
    axes: dict[str, dict[int, str]] = {"items": {0: "batch", 1: "length"}, "query": {0: "batch"}}
    if net.text_dim:
        axes["item_text"] = {0: "batch", 1: "length"}

    def feeds_for(items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (items, net.item_text[items]) if net.text_dim else (items,)

    sample = feeds_for(_sample_items(net.item_emb.num_embeddings - 1, 3, 7, seed))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(tower, sample, str(path), input_names=names, output_names=["query"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, (batch, length) in enumerate([(1, 1), (5, min(13, net.max_len)), (16, net.max_len)]):
        args = feeds_for(_sample_items(net.item_emb.num_embeddings - 1, batch, length, seed + i))
        with torch.no_grad():
            expected = tower(*args).numpy()
        worst = max(worst, _check(session, {n: a.numpy() for n, a in zip(names, args,
                                                                         strict=True)}, expected))
    return worst


def export_fused(net: FusedMap, dim: int, path: Path, seed: int = 0) -> float:
    import onnxruntime as ort

    net.eval()
    sample = torch.randn(4, dim, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (sample,), str(path), input_names=["profile"],
                          output_names=["query"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"profile": {0: "batch"}, "query": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = torch.nn.functional.normalize(torch.randn(32, dim), dim=1)
    with torch.no_grad():
        expected = net(probe).numpy()
    return _check(session, {"profile": probe.numpy()}, expected)


def write_artifact(
    out_dir: Path,
    net: nn.Module,
    *,
    item_ids: list[str],
    items: npt.NDArray[np.float32],
    item_text: npt.NDArray[np.float32] | None,
    version: str,
    metrics: dict[str, Any],
    params: dict[str, Any],
    tolerance: float = TOLERANCE,
    encoder: str = "",
) -> Path:
    """Export, verify and move the complete artifact to ``out_dir`` (replacing it).

    ``encoder``: the `encoder_family` whose text vectors the model was trained on (workers
    running another encoder refuse the model); "" for a model of item ids only."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if isinstance(net, HybridSeq):
            kind, diff = "seq", export_seq(net, tmp / MODEL)
            inputs = ["items", "item_text"] if net.text_dim else ["items"]
            text_dim, max_len = net.text_dim, net.max_len
        elif isinstance(net, FusedMap):
            kind, diff = "fused", export_fused(net, items.shape[1], tmp / MODEL)
            inputs, text_dim, max_len = ["profile"], items.shape[1], 0
        else:
            raise TypeError(f"cannot export {type(net).__name__}")
        if not diff <= tolerance:
            raise ExportMismatchError(f"ONNX differs from torch by {diff:.3g} > {tolerance}")
        np.save(tmp / ITEMS, items.astype(np.float32))
        (tmp / ITEM_IDS).write_text(json.dumps(item_ids), encoding="utf-8")
        if item_text is not None and kind == "seq" and text_dim:
            np.save(tmp / ITEM_TEXT, item_text.astype(np.float32))
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.name != MANIFEST}
        manifest = {
            "kind": kind, "version": version, "dim": int(items.shape[1]), "text_dim": text_dim,
            "max_len": max_len, "n_items": len(item_ids), "files": files,
            "input_names": inputs, "metrics": metrics, "params": params,
            "max_abs_diff_vs_torch": diff,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "format_version": FORMAT_VERSION, "encoder": encoder,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir
