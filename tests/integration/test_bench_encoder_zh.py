"""`bench encoder --text-set zh-en` on the multilingual artifact: its PyTorch peer, both
precisions, the cosine to the peer, the CPU it ran on. Not a timed test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["tests.encoder_fixtures"]
pytestmark = pytest.mark.slow


def test_zh_en_bench_on_the_multilingual_artifact(
    multilingual_encoder_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="the multilingual peer is the PyTorch model")
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from llmrec_stream.bench.cli import bench_group

    out = tmp_path / "results"
    run = CliRunner().invoke(
        bench_group,
        ["encoder", "--artifact", str(multilingual_encoder_dir), "--text-set", "zh-en",
         "--texts", "10", "--batch-sizes", "1,4", "--repeats", "1", "--threads", "1",
         "--no-profile", "--data", str(tmp_path / "no-data"), "--out", str(out)],
    )
    assert run.exit_code == 0, run.output
    assert "cpu: " in run.output and "reference: pytorch-e5" in run.output
    body = json.loads((out / "encoder-zh-en.json").read_text())
    assert body["text_set"] == "zh-en" and body["texts"] == 10 and body["cpu"]["model"]
    assert body["reference"] == "pytorch-e5 fp32 at batch 32"
    rows = {(m["contender"], m["batch_size"]): m for m in body["measurements"]}
    assert set(rows) == {(c, b) for c in ("pytorch-e5", "onnx-fp32", "onnx-int8") for b in (1, 4)}
    assert rows[("onnx-fp32", 4)]["cos_min"] > 0.9999  # the graph the PyTorch model traced
    assert rows[("onnx-int8", 4)]["cos_min"] > 0.98
    assert body["verdicts"] == {}  # MiniLM's targets are not this encoder's
    assert (out / "encoder-zh-en.png").is_file()
