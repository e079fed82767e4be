"""``llmrec-stream demo --features all``: reasons next to the lists, sponsored slots placed
within their budgets (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrec_stream.cli import main


def test_demo_shows_reasons_and_sponsored_slots_within_budget(encoder_dir: Path) -> None:
    env = {"LLMREC_ENCODER_DIR": str(encoder_dir), "LLMREC_KAFKA_BOOTSTRAP": "",
           "LLMREC_REDIS_URL": "", "COLUMNS": "200"}
    result = CliRunner().invoke(main, [
        "demo", "--precision", "fp32", "--events", "400", "--users", "30", "--items", "240",
        "--rate", "150", "--features", "all",
    ], env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "because:" in out
    table = out[out.index("sponsored slots"):]
    rows = [line for line in table.splitlines() if "demo-camp-" in line]
    assert len(rows) == 3, table
    cells = [[c.strip() for c in row.split("│") if c.strip()] for row in rows]
    impressions = [int(c[2]) for c in cells]
    assert sum(impressions) > 0, table
    assert all(float(c[3]) <= float(c[4]) and c[5] == "yes" for c in cells), table
    print(table)


def test_an_unknown_feature_is_refused() -> None:
    result = CliRunner().invoke(main, ["demo", "--features", "telepathy"])
    assert result.exit_code != 0 and "telepathy" in result.output


@pytest.mark.parametrize("spec", ["all", "reasons,sponsored", " sponsored , reasons "])
def test_feature_lists(spec: str) -> None:
    from llmrec_stream.demo.features import parse_features

    assert parse_features(spec) == {"reasons", "sponsored"}
