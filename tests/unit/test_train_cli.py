"""`llmrec-stream train --data FILE --no-publish`: a versioned, verified artifact per run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch", reason="training needs the `train` extra")

from llmrec_stream.cli import main  # noqa: E402
from llmrec_stream.datasets.toys import cyclic_dataset  # noqa: E402
from llmrec_stream.ranking.model import verify_model_artifact  # noqa: E402


def test_train_writes_a_versioned_artifact_without_publishing(tmp_path: Path) -> None:
    data = cyclic_dataset(n_items=20, n_users=120)
    lines = [
        " ".join([user, *(data.item_ids[i - 1] for i in [*seq, valid, test])])
        for user, seq, valid, test in zip(data.user_ids, data.train, data.valid_target,
                                          data.test_target, strict=True)
    ]
    (tmp_path / "toy.txt").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        main,
        ["train", "--data", str(tmp_path / "toy.txt"), "--out", str(tmp_path / "models"),
         "--no-publish", "--budget", "1", "--max-epochs", "1", "--quiet",
         "--encoder", str(tmp_path / "no-encoder")],
        env={"LLMREC_KAFKA_BOOTSTRAP": ""},
    )
    assert result.exit_code == 0, result.output
    (artifact,) = [p for p in (tmp_path / "models").iterdir() if p.name.startswith("toy-ce-")]
    manifest = verify_model_artifact(artifact)
    assert manifest.version == artifact.name and manifest.input_names == ["items"]
    assert "valid NDCG@10" in result.output and "published" not in result.output


def test_publishing_needs_a_broker(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path)],
                                env={"LLMREC_KAFKA_BOOTSTRAP": ""})
    assert result.exit_code != 0 and "LLMREC_KAFKA_BOOTSTRAP" in result.output
