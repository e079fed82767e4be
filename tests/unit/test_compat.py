"""The fetch pacing patches a private aiokafka method: an upgrade must fail here, loudly.

`check_patch_target` runs against the installed aiokafka (the first test fails on any other
release, or when the method is renamed or changes its parameters); the others show what a
worker enabling the pacing meets then: a clear error, and no patch applied.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import pytest
from aiokafka.consumer.fetcher import Fetcher

from streams import compat


def test_the_installed_aiokafka_is_the_one_the_patch_was_written_for() -> None:
    compat.check_patch_target()  # raises UnsupportedAiokafka on an upgrade


def test_another_aiokafka_release_is_refused_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Fetcher._proc_fetch_request
    monkeypatch.setattr(aiokafka, "__version__", "0.99.0")
    with pytest.raises(compat.UnsupportedAiokafka, match=r"aiokafka 0\.99\.0 is installed.*"
                       r"LLMREC_FETCH_IDLE_BACKOFF_MS=0"):
        compat.pace_empty_fetches(5)
    assert Fetcher._proc_fetch_request is original


def test_a_changed_signature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def renamed_params(self: Any, assignment: Any, node: Any) -> bool:
        return False

    monkeypatch.setattr(Fetcher, "_proc_fetch_request", renamed_params)
    with pytest.raises(compat.UnsupportedAiokafka, match="changed its parameters"):
        compat.pace_empty_fetches(5)
    assert Fetcher._proc_fetch_request is renamed_params


def test_a_vanished_method_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(Fetcher, "_proc_fetch_request")
    with pytest.raises(compat.UnsupportedAiokafka, match="no _proc_fetch_request"):
        compat.check_patch_target()


def test_no_pacing_asked_means_no_check_and_no_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Fetcher._proc_fetch_request
    monkeypatch.setattr(aiokafka, "__version__", "0.99.0")
    compat.pace_empty_fetches(0)  # real Kafka: nothing patched, so nothing to refuse
    assert Fetcher._proc_fetch_request is original
