"""`bench swap`'s measurement: the stall probe on a real event loop, and the per-phase figures."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrec_stream.bench.cli import bench_group
from llmrec_stream.bench.loop_probe import StallMeter, StallWindow, probe
from llmrec_stream.bench.swap import phases


def test_meter_reports_the_worst_lateness_per_window() -> None:
    meter = StallMeter(interval=0.01, window=0.1)
    assert meter.tick(0.0, 100.0) is None  # the first tick only sets the schedule
    closed = [meter.tick(t, 100.0 + t) for t in (0.011, 0.021, 0.231, 0.242)]
    # 0.231 came 0.2 s after the tick due at 0.031: that window's worst; 0.242 is on time
    window = closed[2]
    assert closed[:2] == [None, None] and window is not None and closed[3] is None
    assert window.max_stall_ms == pytest.approx(200.0)
    assert window.ticks == 3 and window.end_ts == pytest.approx(100.231)


def test_probe_sees_a_blocking_call_on_the_loop() -> None:
    out = io.StringIO()

    async def scenario() -> None:
        task = asyncio.create_task(probe(out, StallMeter(interval=0.005, window=0.05)))
        await asyncio.sleep(0.1)
        time.sleep(0.15)  # the loop is blocked: no tick can fire
        await asyncio.sleep(0.15)
        task.cancel()

    asyncio.run(scenario())
    stalls = [json.loads(line)["max_stall_ms"] for line in out.getvalue().splitlines()]
    assert 140 <= max(stalls) < 400, stalls
    assert sorted(stalls)[len(stalls) // 2] < 100  # the other windows saw no such stall


def test_phases_split_freshness_and_stalls_by_wall_time() -> None:
    records = [
        {"published_ts": 1_000_500, "trigger_ts": 1_000_400},  # phase a: 100 ms
        {"published_ts": 1_001_500, "trigger_ts": 1_000_500},  # phase b: 1000 ms
        {"published_ts": 1_003_000, "trigger_ts": 1_002_000},  # after both: left out
    ]
    windows = [StallWindow(1000.9, 20.0, 10), StallWindow(1001.2, 250.0, 3),
               StallWindow(1001.9, 5.0, 10)]
    a, b = phases([("a", 1000.0, 1001.0), ("b", 1001.0, 1002.0)], records, windows)
    assert (a.records, a.p99_ms, a.max_stall_ms, a.stall_windows) == (1, 100.0, 20.0, 1)
    assert (b.records, b.p99_ms, b.max_stall_ms, b.stall_windows) == (1, 1000.0, 250.0, 2)


def test_swap_command_checks_its_schedule(tmp_path: Path) -> None:
    run = CliRunner().invoke(
        bench_group, ["swap", "--first-at", "30", "--second-at", "20", "--out", str(tmp_path)]
    )
    assert run.exit_code != 0 and "--first-at < --second-at" in run.output
