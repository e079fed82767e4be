"""The broker restarts mid-stream: producers and the worker reconnect, nothing is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from tests.fault.scenario import run_scenario, wait_resumed
from tests.integration.live import LiveWorker


def test_broker_restart_mid_stream_loses_nothing(
    fault_stack: DevStack,
    encoder_dir: Path,
    text_encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    notes: dict[str, float] = {}

    def restart(crew: list[LiveWorker], watcher: OutputWatcher) -> None:
        worker = crew[0]
        time.sleep(5.0)
        fault_stack.restart_broker(down_s=3.0)  # SIGTERM (noida-db still drops some acked records)
        back = time.time()
        notes["resumed_s"] = wait_resumed(worker, watcher, back)
        assert worker.proc.alive

    out = run_scenario(
        fault_stack,
        encoder_dir,
        tmp_path,
        text_encoder,
        restart,
        n_events=5_000,
        rate=200.0,
        seed=7,
        app_id="fault-broker",
    )
    print(
        f"\nbroker restart: events {out.delivered}, {notes}, "
        f"lost {out.report.lost}, duplicated {out.report.duplicated}"
    )
    assert out.notes["users_checked"] >= 100  # users on partitions the broker kept intact
    assert out.report.lost == 0 and out.report.duplicated == 0
    assert out.report.ok, out.report.mismatches[:5]
    assert not out.missing_recommendations, out.missing_recommendations[:5]


pytestmark = pytest.mark.timeout(600)
