"""Fixture factories for the modules that run a live worker on a stack of their own.

A module whose checks would be spoiled by other modules' events, Redis flushes, dead letters
or published models assigns its fixtures from these, e.g.::

    stack = own_stack()
    world = replay_world(n_items=120, n_users=10, n_events=50, seed=14)
    worker = catalog_worker("explain")

Each factory returns a module-scoped fixture that pytest registers under the name it is
assigned to, so a module still starts one stack and one worker for all its tests: the slow
parts (a broker, a Redis, a Faust process) are paid once per module, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from llmrec_stream.devstack import DevStack
from llmrec_stream.sources.synthetic import SyntheticReplay, synthetic_replay
from tests.integration.live import LiveWorker, worker_with_catalog


def own_stack() -> Any:
    """A broker and a Redis of the module's own (overrides the session's ``stack``)."""

    @pytest.fixture(scope="module")
    def fixture() -> Iterator[DevStack]:
        with DevStack() as own:
            yield own

    return fixture


def replay_world(**replay: Any) -> Any:
    """The module's synthetic catalog, users and events: ``synthetic_replay(**replay)``."""

    @pytest.fixture(scope="module")
    def fixture() -> SyntheticReplay:
        return synthetic_replay(**replay)

    return fixture


def catalog_worker(
    logdir: str, *, encoder: str = "encoder_dir", env: Mapping[str, str] | None = None
) -> Any:
    """A worker on the module's ``stack`` whose catalog holds the module's ``world`` items; it
    must stop cleanly after the module. ``encoder``: the fixture that gives the artifact;
    ``env``: settings for this worker (``LLMREC_*``); ``logdir``: its log folder's name."""

    @pytest.fixture(scope="module")
    def fixture(
        request: pytest.FixtureRequest, stack: DevStack, world: SyntheticReplay,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[LiveWorker]:
        encoder_dir: Path = request.getfixturevalue(encoder)
        with worker_with_catalog(stack, encoder_dir, tmp_path_factory.mktemp(logdir),
                                 world.items, env=dict(env) if env else None) as live:
            yield live

    return fixture


def bare_worker(logdir: str) -> Any:
    """A worker on the module's ``stack`` with an empty catalog (the tests publish their own);
    it must stop cleanly after the module."""

    @pytest.fixture(scope="module")
    def fixture(
        stack: DevStack, encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[LiveWorker]:
        live = LiveWorker(stack, encoder_dir, tmp_path_factory.mktemp(logdir)).start()
        yield live
        assert live.stop() == 0, live.proc.log_tail()

    return fixture
