"""When a micro-batch's offsets may be committed, and how user-event batches overlap.

The contract (DESIGN.md, "Commit after outputs"): a batch's offsets become committable only
once its profile writes are applied and every record it produced (recommendations, tombstones,
dead letters) is acknowledged by the broker. A refused record leaves the batch uncommitted, so
a restarted worker replays it; the offset watermarks make the replay apply nothing twice, and
the replay publishes again for every user the batch touches, applied or skipped.

Faust mechanisms relied on (faust-streaming 0.15):

- ``Stream.take_events`` hands the agent a list of events and acks them when the agent asks for
  the next list, also when the agent's body raised.
- A message's reference count: ``Message.incref()`` adds a reference and ``Event.ack()`` drops
  one, returning True when it dropped the last; only then does the consumer count the offset as
  processed (``Consumer.ack``), and its commit timer commits the gap-free prefix of those.
  `hold` takes one more reference per event, so take_events' own ack leaves the offset pending;
  `release` drops it once the batch is safe.
- A rebalance waits for held messages (``stream_wait_empty``), so held batches finish (or the
  worker exits) before their partitions move.
- Faust flushes the producer before it commits, but a flush waits for sends to *end*, refused
  ones too (aiokafka's ``flush`` ignores delivery errors): it cannot tell a refused record from
  an acknowledged one. So the gate awaits each delivery itself (`acknowledged`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

P = TypeVar("P")


class _Message(Protocol):
    def incref(self) -> None: ...


class HeldEvent(Protocol):
    """What the gate needs of a Faust event."""

    @property
    def message(self) -> Any: ...

    def ack(self) -> bool: ...


class Produced(Protocol):
    """A batch's outcome as far as the gate cares: the deliveries of what it produced."""

    @property
    def deliveries(self) -> list[Awaitable[object]]: ...


Out = TypeVar("Out", bound=Produced)


class OutputsNotAcknowledged(RuntimeError):
    """A record a batch produced was refused or lost: the batch must not be committed."""


def hold(events: Sequence[HeldEvent]) -> None:
    """One more reference on each event's message: take_events' ack leaves it uncommitted."""
    for event in events:
        event.message.incref()


def release(events: Sequence[HeldEvent], on_committable: Callable[[Any], None]) -> None:
    """Drop the reference `hold` took; ``on_committable(message)`` for each offset that became
    committable (the last reference dropped)."""
    for event in events:
        if event.ack():
            on_committable(event.message)


async def acknowledged(deliveries: Sequence[Awaitable[object]]) -> None:
    """Wait until every delivery settled; raise `OutputsNotAcknowledged` if any failed.

    All are awaited even after a failure, so that no delivery error goes unretrieved.
    """
    if not deliveries:
        return
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise OutputsNotAcknowledged(
            f"{len(failed)} of {len(deliveries)} output records not acknowledged: {failed[0]!r}"
        ) from failed[0]


async def gated(work: Awaitable[Out]) -> Out:
    """One batch that runs alone (the catalog, erasure and model agents): its outcome, once
    every record it produced is acknowledged. The agent's next ``take_events`` step acks it."""
    outcome = await work
    await acknowledged(outcome.deliveries)
    return outcome


class InOrderBatches:
    """User-event batches in two stages, committed only after their outputs are acknowledged.

    Batch n+1 is prepared (decoded, encoded) while batch n is applied (profiles, ranking,
    publishing); batches apply strictly in order, so a user's events reach Redis in offset
    order. After applying, a batch waits for the broker's acknowledgements of its records
    (the next batch is applied meanwhile) and only then is released. At most ``in_flight``
    batches are held at once; `submit` waits for the oldest to finish beyond that.

    ``on_failure`` gets any exception of a batch (prepare, apply or delivery); the worker exits
    there, uncommitted. A failed batch releases nothing, and no later batch applies after it.
    """

    def __init__(self, in_flight: int, on_failure: Callable[[BaseException], None]) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be >= 1, got {in_flight}")
        self.in_flight = in_flight
        self.on_failure = on_failure
        self._running: deque[asyncio.Future[None]] = deque()
        self._last_applied: asyncio.Future[None] | None = None

    async def submit(
        self,
        events: Sequence[HeldEvent],
        prepare: Awaitable[P],
        apply: Callable[[P], Awaitable[Produced]],
        on_committable: Callable[[Any], None],
    ) -> None:
        """Hold ``events`` and start their batch: ``prepare`` runs now, ``apply(prepared)``
        after the previous batch applied, release after its deliveries are acknowledged."""
        while len(self._running) >= self.in_flight:
            await asyncio.wait([self._running.popleft()])
        hold(events)
        applied: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous, self._last_applied = self._last_applied, applied
        prepared = asyncio.ensure_future(prepare)
        self._running.append(
            asyncio.ensure_future(
                self._run(events, prepared, previous, applied, apply, on_committable)
            )
        )

    async def drain(self) -> None:
        """Wait for every submitted batch to finish (released or failed)."""
        while self._running:
            await asyncio.wait([self._running.popleft()])

    async def _run(
        self,
        events: Sequence[HeldEvent],
        prepared: asyncio.Future[P],
        previous: asyncio.Future[None] | None,
        applied: asyncio.Future[None],
        apply: Callable[[P], Awaitable[Produced]],
        on_committable: Callable[[Any], None],
    ) -> None:
        try:
            ready = await prepared
            if previous is not None:
                await previous  # raises if an earlier batch failed: nothing applies after it
            outcome = await apply(ready)
            applied.set_result(None)
            await acknowledged(outcome.deliveries)
        except asyncio.CancelledError:  # shutting down: nothing is released, nothing to report
            self._abandon(prepared, applied)
            raise
        except Exception as exc:
            self._abandon(prepared, applied)
            self.on_failure(exc)
            return
        release(events, on_committable)

    @staticmethod
    def _abandon(prepared: asyncio.Future[Any], applied: asyncio.Future[None]) -> None:
        if not applied.done():
            applied.set_exception(RuntimeError("an earlier batch failed"))
            applied.exception()  # retrieved: a batch that never comes need not log it
        if not prepared.done():
            prepared.cancel()
