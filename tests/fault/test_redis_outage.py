"""Redis unavailable for 30 s mid-stream: the worker waits (backpressure), then catches up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from tests.fault.scenario import run_scenario, wait_resumed
from tests.integration.live import LiveWorker

OUTAGE_S = 30.0


def test_redis_down_for_30s_then_back_loses_nothing(
    fault_stack: DevStack,
    encoder_dir: Path,
    text_encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    notes: dict[str, float] = {}

    def outage(crew: list[LiveWorker], watcher: OutputWatcher) -> None:
        worker = crew[0]
        time.sleep(4.0)
        retries_before = worker.metrics().get("llmrec_redis_retries_total", 0.0)
        fault_stack.restart_redis(down_s=OUTAGE_S)  # AOF on: data survives the restart
        back = time.time()
        notes["resumed_s"] = wait_resumed(worker, watcher, back)
        notes["retries"] = worker.metrics()["llmrec_redis_retries_total"] - retries_before
        # the worker never crashed: the same process as before the outage
        assert worker.proc.alive

    out = run_scenario(
        fault_stack,
        encoder_dir,
        tmp_path,
        text_encoder,
        outage,
        n_events=6_000,
        rate=150.0,
        seed=6,
        app_id="fault-redis",
    )
    print(
        f"\nredis outage {OUTAGE_S:.0f}s: events {out.delivered}, {notes}, "
        f"lost {out.report.lost}, duplicated {out.report.duplicated}"
    )
    assert notes["retries"] > 0
    assert out.report.lost == 0 and out.report.duplicated == 0
    assert out.report.ok, out.report.mismatches[:5]
    assert not out.missing_recommendations, out.missing_recommendations[:5]


pytestmark = pytest.mark.timeout(600)
