"""The commit gate and the in-order batch scheduler, on Faust's real message refcount.

Messages are ``faust.types.tuples.Message`` (the refcount `hold` and `release` rely on); an
event acks its message the way ``faust.Event.ack`` does. Deliveries are plain futures the test
resolves, standing for the producer's acknowledgements.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types.tuples import Message

from llmrec_stream.commit import InOrderBatches, OutputsNotAcknowledged, acknowledged, gated


def _run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """A coroutine test run on a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


class _Event:
    """A stream event: ``ack`` drops one reference, True on the last (as ``faust.Event``)."""

    def __init__(self, offset: int) -> None:
        self.message = Message("t", 0, offset, 0.0, 0, None, b"k", b"v", None)
        self.message.incref()  # the stream's own reference, as when Faust delivers it

    def ack(self) -> bool:
        return self.message.ack(None)  # type: ignore[arg-type]  # the base Message needs none


@dataclass
class _Outcome:
    deliveries: list[Awaitable[object]] = field(default_factory=list)


def _batch(*offsets: int) -> list[_Event]:
    return [_Event(o) for o in offsets]


def _take_events_ack(events: list[_Event]) -> None:
    """What ``take_events`` does after the agent's body: ack every event of the batch."""
    for e in events:
        e.ack()


class _Harness:
    def __init__(self, in_flight: int = 2) -> None:
        self.failures: list[BaseException] = []
        self.committable: list[int] = []
        self.applied: list[str] = []
        self.batches = InOrderBatches(in_flight, self.failures.append)

    def on_committable(self, message: Any) -> None:
        self.committable.append(message.offset)

    async def submit(
        self, name: str, events: list[_Event], prepare: Awaitable[str], outcome: _Outcome
    ) -> None:
        async def apply(prepared: str) -> _Outcome:
            self.applied.append(prepared)
            return outcome

        await self.batches.submit(events, prepare, apply, self.on_committable)
        _take_events_ack(events)


async def _value(v: str, gate: asyncio.Event | None = None) -> str:
    if gate is not None:
        await gate.wait()
    return v


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@_run
async def test_offsets_become_committable_only_after_every_output_is_acknowledged() -> None:
    h = _Harness()
    loop = asyncio.get_running_loop()
    acks = [loop.create_future(), loop.create_future()]
    events = _batch(10, 11)
    await h.submit("a", events, _value("a"), _Outcome(list(acks)))
    await _settle()
    assert h.applied == ["a"]
    assert h.committable == []  # applied, take_events acked, outputs not acknowledged yet
    assert all(not e.message.acked for e in events)
    acks[0].set_result("metadata")
    await _settle()
    assert h.committable == []
    acks[1].set_result("metadata")
    await h.batches.drain()
    assert h.committable == [10, 11] and not h.failures


@_run
async def test_a_refused_output_releases_nothing_and_reports_the_failure() -> None:
    h = _Harness()
    loop = asyncio.get_running_loop()
    ok, refused = loop.create_future(), loop.create_future()
    await h.submit("a", _batch(1, 2), _value("a"), _Outcome([ok, refused]))
    refused.set_exception(RuntimeError("MessageSizeTooLarge"))
    ok.set_result("metadata")
    await h.batches.drain()
    assert h.committable == []
    assert len(h.failures) == 1 and isinstance(h.failures[0], OutputsNotAcknowledged)
    assert "1 of 2" in str(h.failures[0])


@_run
async def test_batches_apply_in_order_while_the_next_is_prepared() -> None:
    h = _Harness()
    first_ready = asyncio.Event()
    await h.submit("a", _batch(1), _value("a", first_ready), _Outcome())
    await h.submit("b", _batch(2), _value("b"), _Outcome())  # prepared at once
    await _settle()
    assert h.applied == []  # b waits for a, whose preparation is not done
    first_ready.set()
    await h.batches.drain()
    assert h.applied == ["a", "b"]
    assert h.committable == [1, 2]


@_run
async def test_a_batch_waiting_for_acknowledgements_does_not_hold_up_the_next_apply() -> None:
    h = _Harness()
    ack = asyncio.get_running_loop().create_future()
    await h.submit("a", _batch(1), _value("a"), _Outcome([ack]))
    await h.submit("b", _batch(2), _value("b"), _Outcome())
    await _settle()
    assert h.applied == ["a", "b"]
    assert h.committable == [2]  # b's offset is released; Faust commits only the gap-free prefix
    ack.set_result("metadata")
    await h.batches.drain()
    assert sorted(h.committable) == [1, 2]


@_run
async def test_at_most_in_flight_batches_are_held() -> None:
    h = _Harness(in_flight=2)
    ack = asyncio.get_running_loop().create_future()
    await h.submit("a", _batch(1), _value("a"), _Outcome([ack]))
    await h.submit("b", _batch(2), _value("b"), _Outcome())
    third = asyncio.ensure_future(h.submit("c", _batch(3), _value("c"), _Outcome()))
    await _settle()
    assert not third.done()  # a still waits for its acknowledgement
    ack.set_result("metadata")
    await third
    await h.batches.drain()
    assert h.applied == ["a", "b", "c"]


@_run
async def test_no_batch_applies_after_a_failed_one() -> None:
    h = _Harness()

    async def broken() -> str:
        raise ValueError("a bug")

    await h.submit("a", _batch(1), broken(), _Outcome())
    await h.submit("b", _batch(2), _value("b"), _Outcome())
    await h.batches.drain()
    assert h.applied == []
    assert h.committable == []
    assert isinstance(h.failures[0], ValueError)


@_run
async def test_acknowledged_waits_for_every_delivery_even_after_a_failure() -> None:
    loop = asyncio.get_running_loop()
    failed, slow = loop.create_future(), loop.create_future()
    failed.set_exception(RuntimeError("refused"))
    waiting = asyncio.ensure_future(acknowledged([failed, slow]))
    await _settle()
    assert not waiting.done()
    slow.set_result("metadata")
    with pytest.raises(OutputsNotAcknowledged):
        await waiting


@_run
async def test_gated_returns_the_outcome_once_acknowledged_and_raises_if_refused() -> None:
    loop = asyncio.get_running_loop()
    ack = loop.create_future()
    ack.set_result("metadata")
    out = _Outcome([ack])

    async def work(o: _Outcome) -> _Outcome:
        return o

    assert await gated(work(out)) is out
    refused = loop.create_future()
    refused.set_exception(RuntimeError("refused"))
    with pytest.raises(OutputsNotAcknowledged):
        await gated(work(_Outcome([refused])))


def test_in_flight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="in_flight"):
        InOrderBatches(0, lambda exc: None)


class _Rebalance:
    """A real Faust consumer's bookkeeping for topic ``t``, partition 0: messages tracked as the
    conductor tracks them, and ``wait_empty``, which a rebalance awaits before it gives up the
    partitions (``stream_wait_empty``). Only the broker calls are replaced: the assignment
    is partition 0 and a commit is recorded instead of sent."""

    def __init__(self) -> None:
        import faust
        from faust.types.tuples import TP

        self.app = faust.App("commit-test", broker="kafka://localhost:1", web_enabled=False)
        self.tp = TP("t", 0)
        self.committed: list[dict[Any, int]] = []
        self.consumer = self.app.consumer

    async def start(self) -> None:
        self.app.topics.add(self.app.topic("t", value_serializer="raw"))
        await self.app.topics._update_indices()  # type: ignore[attr-defined]  # what the conductor does on subscription
        self.consumer.assignment = lambda: {self.tp}  # type: ignore[method-assign]

        async def record(offsets: Any) -> bool:
            self.committed.append(dict(offsets))
            return True

        self.consumer._commit = record  # type: ignore[attr-defined]

    def batch(self, *offsets: int) -> list[Any]:
        from faust.types.tuples import ConsumerMessage

        events = []
        for o in offsets:
            event = _Event(o)
            event.message = ConsumerMessage("t", 0, o, 0.0, 0, None, b"k", b"v", None)
            self.consumer.track_message(event.message)
            event.message.incref()
            consumer = self.consumer
            event.ack = functools.partial(event.message.ack, consumer)  # type: ignore[method-assign]
            events.append(event)
        return events

    def on_committable(self, message: Any) -> None:
        """What ``streams.agents`` passes: Faust's on-message-out sensor hook."""
        self.app.sensors.on_message_out(message.tp, message.offset, message)


@_run
async def test_a_rebalance_waits_for_held_batches_and_commits_them_once_acknowledged() -> None:
    r = _Rebalance()
    await r.start()
    assert r.app.conf.stream_wait_empty  # the default streams/app.py relies on
    failures: list[BaseException] = []
    batches = InOrderBatches(2, failures.append)
    ack = asyncio.get_running_loop().create_future()
    events = r.batch(5, 6)

    async def apply(prepared: str) -> _Outcome:
        return _Outcome([ack])

    await batches.submit(events, _value("a"), apply, r.on_committable)
    _take_events_ack(events)
    revoking = asyncio.ensure_future(r.consumer.wait_empty())
    await asyncio.sleep(0.2)
    assert not revoking.done()  # the partitions cannot move while the batch is held
    assert r.committed == []
    ack.set_result("metadata")  # the agent takes no further batch: the scheduler releases
    await asyncio.wait_for(revoking, 5)
    assert r.committed == [{r.tp: 7}] and not failures


@_run
async def test_a_rebalance_never_commits_a_batch_whose_output_was_refused() -> None:
    r = _Rebalance()
    await r.start()
    failures: list[BaseException] = []
    batches = InOrderBatches(2, failures.append)
    refused = asyncio.get_running_loop().create_future()
    events = r.batch(5)

    async def apply(prepared: str) -> _Outcome:
        return _Outcome([refused])

    await batches.submit(events, _value("a"), apply, r.on_committable)
    _take_events_ack(events)
    revoking = asyncio.ensure_future(r.consumer.wait_empty())
    refused.set_exception(RuntimeError("NotEnoughReplicas"))
    await batches.drain()
    await asyncio.sleep(0.2)
    assert isinstance(failures[0], OutputsNotAcknowledged)  # the worker exits there
    assert not revoking.done() and r.committed == []
    r.consumer._stopped.set()  # type: ignore[attr-defined]  # the worker stops: the wait ends
    await asyncio.wait_for(revoking, 5)
    assert r.committed == []  # and its last commit holds nothing of the refused batch
