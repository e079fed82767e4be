"""Fixtures the unit tests that read settings share."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def clean_llmrec_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LLMREC_* variable of the developer's shell leaks into a settings test (asked for by
    name with ``usefixtures``: other unit tests keep the test cache's LLMREC_TEST_CACHE)."""
    for name in list(os.environ):
        if name.upper().startswith("LLMREC_"):
            monkeypatch.delenv(name)
    yield
