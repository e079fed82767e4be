"""Fixture factories for integration modules: the stack, world, worker and profile store
that many modules set up alike, with only their data or settings differing.

A module assigns its fixtures from these, e.g. one whose checks would be spoiled by other
modules' events, Redis flushes, dead letters or published models::

    stack = own_stack()
    world = replay_world(n_items=120, n_users=10, n_events=50, seed=14)
    worker = catalog_worker("explain")

Each factory returns a fixture that pytest registers under the name it is assigned to. The
stack, world and workers are module-scoped, so a module still pays the slow parts (a broker,
a Redis, a Faust process) once for all its tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
import redis.asyncio as aioredis

from llmrec_stream.devstack import DevStack
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.profiles.store import ProfileStore
from llmrec_stream.sources.synthetic import SyntheticReplay, synthetic_replay

if TYPE_CHECKING:  # imported where a worker starts: the store's modules need none of it
    from tests.integration.live import LiveWorker


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
        from tests.integration.live import worker_with_catalog

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
        from tests.integration.live import LiveWorker

        live = LiveWorker(stack, encoder_dir, tmp_path_factory.mktemp(logdir)).start()
        yield live
        assert live.stop() == 0, live.proc.log_tail()

    return fixture


def profile_store(
    dim: int, weights: FusionWeights, *, recent_items: int = 5, seen_items: int = 4
) -> Any:
    """Each test's `ProfileStore` of ``dim``-vectors on the stack's Redis, emptied first
    (``redis_client`` flushes it), with the event loop that drives it."""

    @pytest.fixture
    def fixture(
        stack: DevStack, redis_client: redis.Redis
    ) -> Iterator[tuple[ProfileStore, asyncio.AbstractEventLoop]]:
        loop = asyncio.new_event_loop()
        client = aioredis.Redis.from_url(stack.redis_url)
        try:
            yield ProfileStore(client, dim, weights, recent_items=recent_items,
                               seen_items=seen_items), loop
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()

    return fixture
