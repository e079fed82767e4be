"""Client-side workaround for brokers that answer empty fetches at once.

Apache Kafka holds an empty fetch for up to ``fetch.max.wait.ms``; the embedded ``noida-db``
broker answers immediately, and aiokafka (under Faust) then re-sends fetches in a tight loop:
an idle worker burnt 95 % of a core here. With ``LLMREC_FETCH_IDLE_BACKOFF_MS`` > 0 (the
embedded stack sets it), an empty fetch answered sooner than that waits out the rest, which
bounds the added latency by the same number. Off by default: real Kafka needs none.

The patch wraps a private aiokafka method (``Fetcher._proc_fetch_request``), so it is pinned
to the aiokafka release it was written against (`AIOKAFKA_VERSION`, also pinned in
pyproject.toml): on any other release, or if the method lost its shape, enabling the pacing
raises `UnsupportedAiokafka` with what to re-check, instead of patching something else.
`tests/unit/test_compat.py` fails on an upgrade for the same reason.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import aiokafka
from aiokafka.consumer.fetcher import Fetcher

#: The aiokafka release whose private ``Fetcher._proc_fetch_request`` the patch wraps.
AIOKAFKA_VERSION = "0.14.0"
#: That method's parameters there; the patch passes exactly these through.
PATCHED_PARAMETERS = ("self", "assignment", "node_id", "request")


class UnsupportedAiokafka(RuntimeError):
    """The installed aiokafka is not the one the fetch pacing was written against."""


def check_patch_target() -> None:
    """Raise `UnsupportedAiokafka` unless aiokafka is `AIOKAFKA_VERSION` and the patched
    method still is a coroutine with `PATCHED_PARAMETERS`."""
    method = getattr(Fetcher, "_proc_fetch_request", None)
    problem = None
    if aiokafka.__version__ != AIOKAFKA_VERSION:
        problem = f"aiokafka {aiokafka.__version__} is installed"
    elif method is None:
        problem = "aiokafka's Fetcher has no _proc_fetch_request"
    elif not inspect.iscoroutinefunction(method):
        problem = "Fetcher._proc_fetch_request is no longer a coroutine function"
    elif tuple(inspect.signature(method).parameters) != PATCHED_PARAMETERS:
        problem = f"Fetcher._proc_fetch_request{inspect.signature(method)} changed its parameters"
    if problem:
        raise UnsupportedAiokafka(
            f"{problem}; streams/compat.py patches it and was written for aiokafka "
            f"{AIOKAFKA_VERSION} {PATCHED_PARAMETERS}: re-check the patch against the new "
            "release (then bump AIOKAFKA_VERSION), or set LLMREC_FETCH_IDLE_BACKOFF_MS=0"
        )


def pace_empty_fetches(backoff_ms: int) -> None:
    """Patch aiokafka's fetcher once per process; `UnsupportedAiokafka` on another release."""
    if backoff_ms <= 0:
        return
    check_patch_target()
    if getattr(Fetcher, "_llmrec_paced", False):
        return
    original = Fetcher._proc_fetch_request
    floor = backoff_ms / 1000.0

    async def paced(self: Fetcher, assignment: Any, node_id: int, request: Any) -> bool:
        started = time.monotonic()
        got_records: bool = await original(self, assignment, node_id, request)
        if not got_records:
            rest = floor - (time.monotonic() - started)
            if rest > 0:
                try:
                    await asyncio.sleep(rest)
                except asyncio.CancelledError:
                    # closing or unassigned: like the original, end quietly (the fetcher's
                    # close() awaits this task and must not see the cancellation)
                    return got_records
        return got_records

    Fetcher._proc_fetch_request = paced
    Fetcher._llmrec_paced = True
