"""The one wait-until loop (`llmrec_stream.waiting`) the stack, the workers and the tests use."""

from __future__ import annotations

import itertools
import time

import pytest

from llmrec_stream.waiting import poll, wait_until


def test_poll_returns_as_soon_as_the_check_holds() -> None:
    calls = itertools.count(1)
    assert poll(lambda: next(calls) >= 3, 5, interval=0.01)
    assert next(calls) == 4  # checked exactly three times


def test_poll_gives_up_at_the_deadline_after_checking_at_least_once() -> None:
    calls: list[float] = []
    started = time.monotonic()
    assert not poll(lambda: calls.append(time.monotonic()), 0.2, interval=0.02)
    assert time.monotonic() - started >= 0.2
    assert not poll(lambda: calls.append(0.0), 0)
    assert len(calls) >= 2


def test_a_dead_process_ends_the_wait_at_once() -> None:
    def dead() -> None:
        raise RuntimeError("exited with 70")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with 70"):
        poll(lambda: False, 30, alive=dead)
    assert time.monotonic() - started < 1


def test_wait_until_names_what_it_waited_for_and_the_detail() -> None:
    expected = r"timed out after 0s waiting for the catalog:\nlog tail"
    with pytest.raises(TimeoutError, match=expected):
        wait_until(lambda: False, 0.05, "the catalog", interval=0.01, detail=lambda: "log tail")
    wait_until(lambda: {"a": 1}, 1, "a truthy value")  # any truthy result ends the wait
