"""The README's first command, small: the demo runs end to end and exits 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrec_stream.cli import main

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _run(encoder_dir: Path, *args: str) -> str:
    env = {
        "LLMREC_ENCODER_DIR": str(encoder_dir),
        # the demo starts its own embedded stack when these are empty
        "LLMREC_KAFKA_BOOTSTRAP": "",
        "LLMREC_REDIS_URL": "",
    }
    result = CliRunner().invoke(main, ["demo", "--precision", "fp32", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_on_the_builtin_generator(encoder_dir: Path) -> None:
    out = _run(encoder_dir, "--events", "300", "--users", "20", "--items", "64", "--rate", "150")
    assert "summary" in out and "events replayed" in out
    assert "freshness p99" in out


def test_demo_replays_amazon_reviews(encoder_dir: Path) -> None:
    path = DATA / "amazon2018" / "Appliances_5.json.gz"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see ../shared/data/README.md)")
    out = _run(encoder_dir, "--dataset", str(path), "--events", "200", "--rate", "150")
    assert "events replayed" in out
