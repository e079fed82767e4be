"""``docs/settings.md`` is generated from ``Settings``: regenerate and compare, never drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmrec_stream.config import SETTINGS_DOC, Settings, settings_markdown

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python -m llmrec_stream.config --markdown > docs/settings.md"


def test_docs_settings_md_is_the_generated_table() -> None:
    on_disk = (ROOT / SETTINGS_DOC).read_text(encoding="utf-8")
    assert on_disk == settings_markdown(), f"{SETTINGS_DOC} is stale: run `{REGENERATE}`"


def test_every_field_has_one_row_with_its_variable_default_and_description() -> None:
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| `LLMREC_(\w+)` \|.*$", settings_markdown(), re.MULTILINE)
    }
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        row = rows[name.upper()]
        assert row.count(" | ") == 3, row  # four cells: no unescaped pipe inside one
        assert " ".join((field.description or "").split())[:40] in row.replace("\\|", "|")


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [("top_k", "7", 7), ("encoder_precision", "int8", "int8"), ("redis_cluster", "true", True)],
)
def test_the_documented_variable_is_the_one_read(
    monkeypatch: pytest.MonkeyPatch, field: str, raw: str, value: object
) -> None:
    # the table promises LLMREC_<NAME>; this holds only while no field gets an alias
    monkeypatch.setenv(f"LLMREC_{field.upper()}", raw)
    assert getattr(Settings(), field) == value
    fields = Settings.model_fields.values()
    assert all(f.alias is None and f.validation_alias is None for f in fields)
