"""Client-side workaround for brokers that answer empty fetches at once.

Apache Kafka holds an empty fetch for up to ``fetch.max.wait.ms``; the embedded ``noida-db``
broker answers immediately, and aiokafka (under Faust) then re-sends fetches in a tight loop:
an idle worker burnt 95 % of a core here. With ``LLMREC_FETCH_IDLE_BACKOFF_MS`` > 0 (the
embedded stack sets it), an empty fetch answered sooner than that waits out the rest, which
bounds the added latency by the same number. Off by default: real Kafka needs none.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.consumer.fetcher import Fetcher


def pace_empty_fetches(backoff_ms: int) -> None:
    """Patch aiokafka's fetcher once per process."""
    if backoff_ms <= 0 or getattr(Fetcher, "_llmrec_paced", False):
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
