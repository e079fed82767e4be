"""Fault tier: a stack of its own (Redis with an append-only file, so it survives restarts),
workers that get killed, and the replay verifier to compare against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrec_stream.devstack import DevStack

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.fault)


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A fresh embedded stack per module: faults in one module never leak into another."""
    workdir = tmp_path_factory.mktemp("fault-stack")
    with DevStack(workdir=workdir, redis_persistence=True) as stack:
        yield stack
