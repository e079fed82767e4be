"""Co-occurrence warm start and the pooled-history path of the project's model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the `train` extra")
pytest.importorskip("onnxruntime", reason="export checks need onnxruntime")

from llmrec_stream.datasets.toys import cyclic_dataset  # noqa: E402
from llmrec_stream.trainer.cooc import cooccurrence_factors  # noqa: E402
from llmrec_stream.trainer.export import export_seq  # noqa: E402
from llmrec_stream.trainer.hybrid import HybridSeq  # noqa: E402


def test_cooccurrence_factors_put_neighbours_together() -> None:
    data = cyclic_dataset(n_items=30, n_users=600)
    factors = cooccurrence_factors(data, dim=8)
    assert factors.shape == (data.n_items + 1, 8)
    assert not factors[0].any()  # padding row
    unit = factors[1:] / np.linalg.norm(factors[1:], axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    nearest = cos.argmax(axis=1)
    gap = np.abs(nearest - np.arange(data.n_items))
    ring = np.minimum(gap, data.n_items - gap)
    assert np.mean(ring <= 3) > 0.9  # items walked together sit together


@pytest.mark.parametrize("with_text", [False, True])
def test_pooled_user_tower_exports(tmp_path: Path, with_text: bool) -> None:
    torch.manual_seed(3)
    text = torch.randn(41, 16) if with_text else None
    net = HybridSeq(40, text, dim=16, heads=2, max_len=12, pool=True)
    assert export_seq(net, tmp_path / "model.onnx") < 1e-4
