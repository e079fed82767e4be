"""Fault tier: a stack of its own (Redis with an append-only file, so it survives restarts),
workers that get killed, and the replay verifier to compare against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from tests.fault.scenario import Fault, Outcome, Scenario, run_scenario


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A fresh embedded stack per module: faults in one module never leak into another."""
    workdir = tmp_path_factory.mktemp("fault-stack")
    with DevStack(workdir=workdir, redis_persistence=True) as stack:
        yield stack


@pytest.fixture
def scenario(encoder_dir: Path, text_encoder: TextEncoder, tmp_path: Path) -> Scenario:
    """`run_scenario` with the session's encoder (the verifier re-encodes comments with it),
    logging into the test's own folder: call it with the stack, the fault and the options."""

    def run(stack: DevStack, fault: Fault, **options: Any) -> Outcome:
        return run_scenario(stack, encoder_dir, tmp_path, text_encoder, fault, **options)

    return run
