"""Agents: each hands a micro-batch of raw records to the pipeline."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterable, Awaitable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import redis.exceptions

from llmrec_stream.commit import InOrderBatches, gated
from llmrec_stream.dlq import check_prefix
from llmrec_stream.events.records import RawRecord
from llmrec_stream.pipeline import Pipeline
from streams.app import (
    app,
    dlq_topic,
    erase_topic,
    items_topic,
    models_topic,
    recommendations_topic,
    settings,
    sponsored_topic,
    user_events_topic,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class FaustSink:
    """Pipeline output through the app's producer (batched, acks=all).

    Faust's ``topic.send`` only puts the record in the producer's buffer; what it returns is
    the record's delivery (aiokafka's future: metadata once the broker acknowledged it, an
    exception if it refused it). The pipeline collects those and the agents release a batch's
    offsets only when all resolved (`llmrec_stream.commit`).
    """

    async def recommendation(self, user_id: str, payload: bytes) -> Awaitable[object]:
        return await recommendations_topic.send(key=user_id.encode("utf-8"), value=payload)

    async def tombstone(self, user_id: str) -> Awaitable[object]:
        return await recommendations_topic.send(key=user_id.encode("utf-8"), value=None)

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> Awaitable[object]:
        return await dlq_topic.send(key=key, value=payload, headers=headers)


_pipeline: Pipeline | None = None
_lock = asyncio.Lock()


async def pipeline() -> Pipeline:
    """Built once per worker process, on first use (loads the encoder and the catalog).

    A worker that cannot build it (no encoder artifact, a bad pinned model...) exits with its
    reason instead of idling in the group with crashed agents.
    """
    global _pipeline
    async with _lock:
        if _pipeline is None:
            from llmrec_stream.health import serve_worker
            from llmrec_stream.metrics import Metrics
            from llmrec_stream.worker import build_pipeline, encoder_id

            metrics = Metrics()
            try:
                check_prefix(settings.dlq.value_prefix_bytes, app.conf.producer_max_request_size)
                if settings.metrics.port:
                    # served while the pipeline builds: alive at once, ready once built
                    serve_worker(settings, metrics, lambda: _pipeline is not None, _assigned)
                built = await build_pipeline(settings, FaustSink(), metrics=metrics)
                metrics.describe_build(encoder_id(settings))
                _pipeline = built
            except Exception:
                log.critical("cannot start the pipeline; exiting", exc_info=True)
                logging.shutdown()
                os._exit(78)  # EX_CONFIG
    return _pipeline


def _assigned() -> Iterator[tuple[str, int]]:
    """This worker's partitions now (read from the ops server's thread: a copy, retried if a
    rebalance changed the set while it was copied)."""
    for _ in range(3):
        try:
            tps = list(app.consumer.assignment())
        except RuntimeError:
            continue
        return ((tp.topic, tp.partition) for tp in tps)
    return iter(())


def _raw(events: Sequence[Any]) -> list[RawRecord]:
    return [
        RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                  e.message.value)
        for e in events
    ]


async def _or_exit(work: Awaitable[T]) -> T:
    """Run one micro-batch step; an unexpected failure ends the process before anything commits.

    Faust acks a ``take_events`` batch even when its body raises, and would then commit past
    events that were never applied. A bug must not turn into silent loss: exit at once, the
    restarted worker replays the batch (the offset watermarks make that safe). Bad *input*
    never gets here: it is a dead letter. Redis outages never get here either: they are
    retried inside the pipeline (backpressure).
    """
    try:
        return await work
    except Exception as exc:
        _exit_uncommitted(exc)


def _exit_uncommitted(exc: BaseException) -> NoReturn:
    """A batch failed (a bug, or an output the broker refused): its offsets were never
    released, so exiting now leaves them uncommitted and the restarted worker replays it."""
    log.critical("unexpected failure in a micro-batch; exiting uncommitted", exc_info=exc)
    logging.shutdown()
    os._exit(70)


def _committable(message: Any) -> None:
    app.sensors.on_message_out(message.tp, message.offset, message)


@app.agent(user_events_topic)
async def user_events(stream: AsyncIterable[Any]) -> None:
    """Micro-batches in a two-stage pipeline: batch n+1 is decoded and encoded (the encoder
    thread) while batch n is applied, ranked and published (the event loop).

    `InOrderBatches` holds at most ``batches_in_flight`` batches; their offsets are committed
    only once applied and once every record they produced is acknowledged, and a rebalance
    waits for them (Faust's ``stream_wait_empty``).
    """
    p = await pipeline()
    batches = InOrderBatches(settings.stream.batches_in_flight, _exit_uncommitted)
    async for batch in stream.take_events(  # type: ignore[attr-defined]
            settings.stream.batch_max, within=settings.stream.batch_within_s):
        await batches.submit(batch, p.prepare_events(_raw(batch)), p.apply_events, _committable)


@app.agent(items_topic)
async def items(stream: AsyncIterable[Any]) -> None:
    p = await pipeline()
    async for batch in stream.take_events(  # type: ignore[attr-defined]
            settings.stream.batch_max, within=settings.stream.batch_within_s):
        await _or_exit(gated(p.process_items(_raw(batch))))


@app.agent(erase_topic)
async def erasures(stream: AsyncIterable[Any]) -> None:
    p = await pipeline()
    async for batch in stream.take_events(64, within=settings.stream.batch_within_s):  # type: ignore[attr-defined]
        await _or_exit(gated(p.process_erasures(_raw(batch))))


@app.agent(models_topic)
async def models(stream: AsyncIterable[Any]) -> None:
    """Published models: one worker checks each and decides its promotion."""
    p = await pipeline()
    async for batch in stream.take_events(16, within=settings.stream.batch_within_s):  # type: ignore[attr-defined]
        await _or_exit(gated(p.process_models(_raw(batch))))


@app.agent(sponsored_topic)
async def sponsored(stream: AsyncIterable[Any]) -> None:
    """Campaigns (issue 14): into the table every worker mirrors (`Pipeline.process_sponsored`)."""
    p = await pipeline()
    async for batch in stream.take_events(64, within=settings.stream.batch_within_s):  # type: ignore[attr-defined]
        await _or_exit(gated(p.process_sponsored(_raw(batch))))


@app.timer(interval=settings.models.poll_s)
async def follow_models() -> None:
    """Every worker swaps in the live model between micro-batches (its loop runs one at a time)."""
    if _pipeline is None:
        return
    try:
        await _pipeline.follow_models()
    except redis.exceptions.RedisError as exc:  # an outage: the next tick tries again
        log.warning("model check skipped: %s", exc)


@app.timer(interval=0.5)
async def refresh_catalog() -> None:
    """Mirror items encoded by other workers (their partitions of llmrec.items)."""
    if _pipeline is None:
        return
    try:
        await _pipeline.catalog.refresh()
    except redis.exceptions.RedisError as exc:  # an outage: the next tick tries again
        log.warning("catalog refresh skipped: %s", exc)
        return
    _pipeline.metrics.items.set(len(_pipeline.catalog.index))
