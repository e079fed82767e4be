"""``train``: search a bounded grid, keep the best model on validation, export the artifact.

The artifact folder (with its sha256 manifest and validation metrics) is what a record on
``llmrec.models`` points to; `llmrec_stream.trainer.cli` publishes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llmrec_stream.datasets.metrics import evaluate
from llmrec_stream.datasets.sequences import SeqDataset, load_dataset
from llmrec_stream.datasets.specs import EvalContext
from llmrec_stream.ranking.model import ModelManifest, sha256_file
from llmrec_stream.trainer.export import write_artifact
from llmrec_stream.trainer.specs import (
    FUSED_GRID,
    HYBRID_GRID,
    FittedFused,
    FittedSeq,
    fit_fused,
    fit_hybrid,
    item_text_matrix,
)

log = logging.getLogger(__name__)
LOSSES: tuple[str, ...] = ("ce", "mse")


@dataclass(frozen=True)
class TrainResult:
    path: Path
    metrics: dict[str, Any]
    params: dict[str, Any]
    manifest_sha256: str
    tried: list[dict[str, Any]] = field(default_factory=list)


def trained_on(encoder_dir: Path | None, *, uses_text: bool) -> str:
    """The `encoder_family` a model depends on: the artifact's that made its text vectors,
    "" when it used none."""
    if encoder_dir is None or not uses_text:
        return ""
    from llmrec_stream.encoder.artifact import encoder_family, encoder_identity, read_manifest

    return encoder_family(encoder_identity(read_manifest(Path(encoder_dir))))


def train(
    dataset: SeqDataset | Path | str,
    out_dir: Path | str,
    *,
    loss: str = "ce",
    budget: int = 3,
    encoder_dir: Path | None = None,
    cache_dir: Path | None = None,
    max_minutes: float = 5.0,
    max_epochs: int = 200,
    seed: int = 0,
    threads: int = 1,
    progress: bool = True,
    grid: list[dict[str, Any]] | None = None,
    version: str | None = None,
) -> TrainResult:
    """Train the project's model (``loss`` "ce": two-tower full softmax; "mse": fused map).

    ``budget`` caps the grid points tried; each run stops at ``max_epochs``, ``max_minutes`` or
    early stopping on validation NDCG@10. Seeds are fixed, so a rerun gives the same model.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    data = dataset if isinstance(dataset, SeqDataset) else load_dataset(dataset)
    ctx = EvalContext(encoder_dir=encoder_dir, cache_dir=cache_dir, max_minutes=max_minutes,
                      max_epochs=max_epochs, threads=threads, progress=progress, seed=seed)
    points = (grid or (HYBRID_GRID if loss == "ce" else FUSED_GRID))[:budget]
    fit = fit_hybrid if loss == "ce" else fit_fused
    best: FittedSeq | FittedFused | None = None
    best_params: dict[str, Any] = {}
    tried = []
    for params in points:
        fitted = fit(data, dict(params), ctx)
        valid = fitted.result.valid
        tried.append({"params": params, "valid": valid, "epochs": fitted.result.best_epoch})
        log.info("%s %s: valid %s", loss, params, valid)
        if best is None or valid["ndcg@10"] > best.result.valid["ndcg@10"]:
            best, best_params = fitted, dict(params)
    assert best is not None  # noqa: S101 - budget >= 1 guarantees one fit
    metrics = {"valid": best.result.valid,
               "test": evaluate(best.scorer("test"), data, "test"),
               "best_epoch": best.result.best_epoch, "dataset": data.name,
               "train_seconds": best.result.seconds}
    version = version or f"{data.name.lower()}-{loss}-s{seed}"
    if isinstance(best, FittedSeq):
        with torch.no_grad():
            items = best.net.item_matrix().numpy().copy()  # type: ignore[operator]
        items[0] = 0.0
        net: torch.nn.Module = best.net
        text = item_text_matrix(data, ctx)
    else:
        items, net, text = best.model.vectors, best.model.net, None
    path = write_artifact(Path(out_dir), net, item_ids=data.item_ids, items=items,
                          item_text=text, version=version, metrics=metrics, params=best_params,
                          encoder=trained_on(ctx.encoder_dir, uses_text=text is not None
                                             or not isinstance(best, FittedSeq)))
    ModelManifest.read(path)
    return TrainResult(path, metrics, best_params, sha256_file(path / "manifest.json"), tried)
