"""Redis unavailable for 30 s mid-stream: the worker waits (backpressure), then catches up."""

from __future__ import annotations

import pytest

from llmrec_stream.devstack import DevStack
from tests.fault.scenario import Scenario, restart_mid_stream

OUTAGE_S = 30.0


def test_redis_down_for_30s_then_back_loses_nothing(
    fault_stack: DevStack, scenario: Scenario
) -> None:
    notes: dict[str, float] = {}
    # AOF on: data survives the restart; the worker never crashes (the same process after)
    outage = restart_mid_stream(lambda: fault_stack.restart_redis(down_s=OUTAGE_S),
                                after_s=4.0, notes=notes, count_retries=True)
    out = scenario(
        fault_stack,
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
