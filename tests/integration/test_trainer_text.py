"""`train` end to end with the real text encoder: item text vectors, search, export, serve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the `train` extra")

from llmrec_stream.datasets.toys import cyclic_dataset  # noqa: E402
from llmrec_stream.encoder.artifact import read_manifest  # noqa: E402
from llmrec_stream.ranking.model import OnnxRanker, verify_model_artifact  # noqa: E402
from llmrec_stream.trainer.train import train  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_train_with_encoder_text(tmp_path: Path, encoder_dir: Path, loss: str) -> None:
    data = cyclic_dataset(n_items=25, n_users=300)
    grid = (
        [
            {"dim": 32, "dropout": 0.1, "lr": 1e-2, "batch_size": 32},
            {"dim": 16, "dropout": 0.1, "lr": 1e-2, "batch_size": 32},
        ]
        if loss == "ce"
        else [{"hidden": 64, "dropout": 0.0, "lr": 1e-2, "batch_size": 64}]
    )
    result = train(
        data,
        tmp_path / "model",
        loss=loss,
        budget=2,
        encoder_dir=encoder_dir,
        cache_dir=tmp_path / "cache",
        max_epochs=2,
        progress=False,
        grid=grid,
    )
    manifest = verify_model_artifact(result.path)
    assert manifest.max_abs_diff_vs_torch < 1e-4
    assert manifest.metrics["test"] == result.metrics["test"]
    assert len(result.tried) == len(grid)
    # the encoder whose text vectors it learned from: workers on another one refuse it
    source = read_manifest(encoder_dir).source
    assert manifest.encoder == f"{source}/384d"
    ranker = OnnxRanker(result.path)
    if loss == "ce":
        assert manifest.kind == "seq" and manifest.text_dim == 384
        assert result.metrics["test"]["recall@10"] > 0.6
        query = ranker.queries_from_recent([["i3", "i2", "i1"]])
        best = ranker.top_k(query, 1, exclude=[["i3", "i2", "i1"]])[0][0][0]
        assert best == "i4"
    else:
        assert manifest.kind == "fused" and manifest.dim == 384
        query = ranker.queries_from_profiles(np.load(result.path / "items.npy")[1:3])
        assert query.shape == (2, 384)
    again = json.loads((result.path / "manifest.json").read_text())
    assert again["files"]["model.onnx"] == manifest.files["model.onnx"]
