"""The project's model on toy data: it learns in one epoch, and its ONNX export matches torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the `train` extra")
pytest.importorskip("onnxruntime", reason="export checks need onnxruntime")

from llmrec_stream.datasets.metrics import evaluate  # noqa: E402
from llmrec_stream.datasets.toys import cyclic_dataset  # noqa: E402
from llmrec_stream.profiles.store import ProfileState  # noqa: E402
from llmrec_stream.ranking.model import (  # noqa: E402
    FusedMapRanker,
    ModelArtifactError,
    OnnxRanker,
    verify_model_artifact,
)
from llmrec_stream.trainer.export import export_seq, write_artifact  # noqa: E402
from llmrec_stream.trainer.fused_map import FusedMap  # noqa: E402
from llmrec_stream.trainer.hybrid import HybridSeq, UserTower  # noqa: E402
from llmrec_stream.trainer.loop import FitConfig, fit_sequential, seq_scorer  # noqa: E402
from llmrec_stream.trainer.sasrec import SASRec  # noqa: E402

FAST = FitConfig(epochs=1, batch_size=32, lr=1e-2, max_minutes=1.0, progress=False)


def _text(n_items: int, dim: int = 16) -> Any:
    text = torch.nn.functional.normalize(torch.randn(n_items + 1, dim), dim=1)
    text[0] = 0
    return text


@pytest.mark.parametrize("with_text", [False, True])
def test_one_epoch_beats_random(with_text: bool) -> None:
    data = cyclic_dataset()
    torch.manual_seed(0)
    net = HybridSeq(data.n_items, _text(data.n_items) if with_text else None, dim=32,
                    dropout=0.1, max_len=10)
    result = fit_sequential(net, data, FAST)
    test = evaluate(seq_scorer(net, net.max_len), data, "test")
    # random ranking of ~23 unseen candidates puts the target in the top 10 about 43% of the time
    assert result.best_epoch == 1
    assert test["recall@10"] > 0.8


def test_sasrec_learns_too() -> None:
    data = cyclic_dataset()
    torch.manual_seed(0)
    net = SASRec(data.n_items, dim=32, dropout=0.1, max_len=10)
    fit_sequential(net, data, FitConfig(epochs=2, batch_size=32, lr=1e-2, progress=False))
    assert evaluate(seq_scorer(net, net.max_len), data, "test")["recall@10"] > 0.6


def test_all_padding_history_gives_finite_scores() -> None:
    net = HybridSeq(5, None, dim=8).eval()
    with torch.no_grad():
        assert torch.isfinite(net.states(torch.zeros(2, 3, dtype=torch.long))).all()


@pytest.mark.parametrize("with_text", [False, True])
def test_onnx_user_tower_matches_torch(tmp_path: Path, with_text: bool) -> None:
    torch.manual_seed(1)
    net = HybridSeq(40, _text(40) if with_text else None, dim=16, heads=2, max_len=12)
    assert export_seq(net, tmp_path / "model.onnx") < 1e-4


def test_artifact_round_trip(tmp_path: Path) -> None:
    data = cyclic_dataset(n_users=100)
    torch.manual_seed(2)
    text = _text(data.n_items)
    net = HybridSeq(data.n_items, text, dim=16, max_len=10).eval()
    with torch.no_grad():
        items = net.item_matrix().numpy().copy()
    items[0] = 0
    out = write_artifact(tmp_path / "model", net, item_ids=data.item_ids, items=items,
                         item_text=text.numpy(), version="toy", metrics={"ndcg@10": 0.5},
                         params={})
    manifest = verify_model_artifact(out)
    assert manifest.kind == "seq" and manifest.input_names == ["items", "item_text"]
    ranker = OnnxRanker(out)
    histories = [h[-10:] for h in data.test_input()[:7]]
    recent = [[data.item_ids[i - 1] for i in h[::-1]] for h in histories]  # newest first
    got = ranker.scores(ranker.queries_from_recent(recent))
    with torch.no_grad():
        want = seq_scorer(net, net.max_len)(np.arange(7), histories)
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=1e-4)
    top = ranker.top_k(ranker.queries_from_recent(recent[:1]), 3, exclude=[recent[0]])
    assert len(top[0]) == 3 and not set(recent[0]) & {i for i, _ in top[0]}
    assert not ranker.queries_from_recent([["unknown-item"]]).any()

    files = json.loads((out / "manifest.json").read_text())["files"]
    assert set(files) == {"model.onnx", "items.npy", "item_ids.json", "item_text.npy"}
    (out / "items.npy").write_bytes(b"tampered")
    with pytest.raises(ModelArtifactError, match="checksum"):
        OnnxRanker(out)


def test_fused_map_artifact(tmp_path: Path) -> None:
    torch.manual_seed(3)
    vectors = _text(20, dim=12).numpy()
    net = FusedMap(12, hidden=32).eval()
    out = write_artifact(tmp_path / "fused", net, item_ids=[f"i{k}" for k in range(20)],
                         items=vectors, item_text=None, version="toy-mse", metrics={},
                         params={})
    ranker = OnnxRanker(out)
    profiles = np.vstack([vectors[3], np.zeros(12, np.float32)])
    query = ranker.queries_from_profiles(profiles)
    with torch.no_grad():
        want = net(torch.from_numpy(profiles[:1])).numpy()
    np.testing.assert_allclose(query[:1], want, atol=1e-5)
    assert not query[1].any()
    served = FusedMapRanker(ranker).queries(
        [ProfileState("u", (True,), np.zeros(12, np.float32), 3 * vectors[3], frozenset())])
    np.testing.assert_allclose(served, want, atol=1e-5)
    with pytest.raises(ModelArtifactError):
        ranker.queries_from_recent([["i1"]])


def test_unexportable_module_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_artifact(tmp_path / "x", UserTower(HybridSeq(3, None, dim=8)),
                       item_ids=["a", "b", "c"], items=np.zeros((4, 8), np.float32),
                       item_text=None, version="x", metrics={}, params={})
    assert not (tmp_path / "x").exists()


def test_future_loss_by_hand() -> None:
    from llmrec_stream.trainer.loop import future_loss

    # one row: inputs [0, 1, 2] -> targets [1, 2, 3]; live positions are columns 1 and 2
    x = torch.tensor([[0, 1, 2]])
    y = torch.tensor([[1, 2, 3]])
    logp = torch.log(torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    # column 1 predicts 2 next; the only later item is 3 -> -log p(3) from row 0 of logp
    assert float(future_loss(logp, x, y)) == pytest.approx(-np.log(0.5))
    assert float(future_loss(logp[:1], torch.tensor([[0, 1]]), torch.tensor([[1, 2]]))) == 0.0
