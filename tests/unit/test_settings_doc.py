"""``docs/settings.md`` is generated from ``Settings``: regenerate and compare, never drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmrec_stream.config import FLAT, SETTINGS_DOC, Settings, settings_markdown
from llmrec_stream.config.settings import section_types

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
    assert set(rows) == {name.upper() for name in FLAT}
    types = section_types()
    for flat_name, (section, name) in FLAT.items():
        row = rows[flat_name.upper()]
        field = types[section].model_fields[name]
        assert row.count(" | ") == 4, row  # five cells: no unescaped pipe inside one
        assert f"| `{section}.{name}` |" in row
        assert " ".join((field.description or "").split())[:40] in row.replace("\\|", "|")


def test_one_table_per_section_in_the_trees_order() -> None:
    titles = re.findall(r"^## .*\(`(\w+)`\)$", settings_markdown(), re.MULTILINE)
    assert titles == list(Settings.model_fields)


@pytest.mark.parametrize(
    ("field", "path", "raw", "value"),
    [
        ("top_k", ("ranking", "top_k"), "7", 7),
        ("encoder_precision", ("encoder", "precision"), "int8", "int8"),
        ("redis_cluster", ("redis", "cluster"), "true", True),
        ("weight_click", ("fusion", "click"), "2.5", 2.5),
    ],
)
def test_the_documented_variable_is_the_one_read(
    monkeypatch: pytest.MonkeyPatch, field: str, path: tuple[str, str], raw: str, value: object
) -> None:
    # the table promises LLMREC_<NAME> for the setting in its row
    monkeypatch.setenv(f"LLMREC_{field.upper()}", raw)
    assert f"| `LLMREC_{field.upper()}` | `{'.'.join(path)}` |" in settings_markdown()
    assert getattr(getattr(Settings(), path[0]), path[1]) == value
