"""Docs and hygiene (issue 15, item 7): the README's first screen, one docs page per area with
the command that reproduces its figures, a LICENSE matching pyproject's, a CHANGELOG."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
#: Pages without measured figures: the API reference, the design, the generated settings.
NO_FIGURES = {"api.md", "architecture.md", "settings.md"}


def test_the_license_file_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the whole text, not a pointer to it


def test_the_changelog_has_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text


def test_the_readme_first_screen_is_for_a_newcomer() -> None:
    first = "\n".join(README.splitlines()[:10])
    assert "make demo" in first and "make test" in first
    assert "Faust workers" in README.split("## Commands")[0]  # the diagram before the table
    table = README.split("## Commands", 1)[1].split("\n\n", 2)[1]
    assert table.count("\n| `llmrec-stream ") >= 10


def test_every_docs_page_is_linked_and_every_link_resolves() -> None:
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", README))
    assert pages <= linked, pages - linked
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_every_page_with_figures_says_how_to_reproduce_them() -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name in NO_FIGURES:
            continue
        text = page.read_text()
        found = re.search(r"(^|\. )Reproduce|^## Running it", text, re.M)
        assert found is not None, page.name
        assert "```" in text[found.start():found.start() + 400], page.name  # its command
