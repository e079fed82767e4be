"""Live = offline on a sample of Scientific: the published top-10 equals the offline top-10.

A model is trained here (ids only, one epoch: the check is about serving, not quality), then
150 users' validation histories go through the real broker, Faust worker and Redis. The whole
set is a benchmark: ``llmrec-stream bench live-offline --model DIR``.

The second test spreads each history over clicks, comments and purchases and produces it as
a backlog before the worker starts: the worker interleaves the topics as its fetches come, and
the recent list the model reads must still be in event time, as offline (issue 19).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_stream.eval.live_offline import live_vs_offline

pytest.importorskip("torch", reason="training needs the `train` extra")
SCIENTIFIC = Path(__file__).resolve().parents[3] / "shared" / "data" / "scientific"


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SCIENTIFIC.is_dir():
        pytest.skip(f"real data not found at {SCIENTIFIC} (see ../shared/data/README.md)")
    from llmrec_stream.trainer.train import train

    trained = train(SCIENTIFIC, tmp_path_factory.mktemp("model") / "model", budget=1,
                    max_epochs=1, progress=False, grid=[{"dim": 32, "dropout": 0.2, "lr": 3e-3}])
    return Path(trained.path)


@pytest.mark.parametrize("interleave", [False, True], ids=["purchases-live", "mixed-backlog"])
def test_published_top_10_equals_the_offline_top_10(
    trained_model: Path, encoder_dir: Path, tmp_path: Path, interleave: bool
) -> None:
    result = live_vs_offline(trained_model, SCIENTIFIC, encoder_dir, users=150,
                             precision="fp32", logdir=tmp_path, interleave=interleave)
    print(f"\nlive = offline on {result['users']} users (interleave={interleave}): exact "
          f"{result['equal_exact']:.3f}, within ties {result['equal_within_ties']:.3f}, NDCG@10 "
          f"live {result['ndcg@10_live']:.4f} / offline {result['ndcg@10_offline']:.4f}")
    assert result["records_from_other_versions"] == 0
    assert result["equal_within_ties"] >= 0.99, result["mismatch_examples"]
    assert result["ndcg@10_live"] == pytest.approx(result["ndcg@10_offline"], abs=0.01)
