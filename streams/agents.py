"""Agents: each hands a micro-batch of raw records to the pipeline."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import Any

import redis.exceptions

from llmrec_stream.pipeline import Pipeline, RawRecord
from streams.app import (
    app,
    dlq_topic,
    erase_topic,
    items_topic,
    models_topic,
    recommendations_topic,
    settings,
    user_events_topic,
)

log = logging.getLogger(__name__)


class FaustSink:
    """Pipeline output through the app's producer (batched, acks=all)."""

    async def recommendation(self, user_id: str, payload: bytes) -> None:
        await recommendations_topic.send(key=user_id.encode("utf-8"), value=payload)

    async def tombstone(self, user_id: str) -> None:
        await recommendations_topic.send(key=user_id.encode("utf-8"), value=None)

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        await dlq_topic.send(key=key, value=payload, headers=headers)


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
            from llmrec_stream.worker import build_pipeline

            try:
                _pipeline = await build_pipeline(settings, FaustSink())
            except Exception:
                log.critical("cannot start the pipeline; exiting", exc_info=True)
                logging.shutdown()
                os._exit(78)  # EX_CONFIG
            if settings.metrics_port:
                _pipeline.metrics.serve(settings.metrics_port)
    return _pipeline


def _raw(events: Sequence[Any]) -> list[RawRecord]:
    return [
        RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                  e.message.value)
        for e in events
    ]


async def _process(step: Callable[[list[RawRecord]], Awaitable[Any]], batch: Any) -> None:
    """Run one micro-batch; an unexpected failure ends the process before anything commits.

    Faust acks a ``take_events`` batch even when its body raises, and would then commit past
    events that were never applied. A bug must not turn into silent loss: exit at once, the
    restarted worker replays the batch (the offset watermarks make that safe). Bad *input*
    never gets here: it is a dead letter. Redis outages never get here either: they are
    retried inside the pipeline (backpressure).
    """
    try:
        await step(_raw(batch))
    except Exception:
        log.critical("unexpected failure in a micro-batch; exiting uncommitted", exc_info=True)
        logging.shutdown()
        os._exit(70)


@app.agent(user_events_topic)
async def user_events(stream: AsyncIterable[Any]) -> None:
    p = await pipeline()
    async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):  # type: ignore[attr-defined]
        await _process(p.process_events, batch)


@app.agent(items_topic)
async def items(stream: AsyncIterable[Any]) -> None:
    p = await pipeline()
    async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):  # type: ignore[attr-defined]
        await _process(p.process_items, batch)


@app.agent(erase_topic)
async def erasures(stream: AsyncIterable[Any]) -> None:
    p = await pipeline()
    async for batch in stream.take_events(64, within=settings.batch_within_s):  # type: ignore[attr-defined]
        await _process(p.process_erasures, batch)


@app.agent(models_topic)
async def models(stream: AsyncIterable[Any]) -> None:
    """Published models: one worker checks each and decides its promotion."""
    p = await pipeline()
    async for batch in stream.take_events(16, within=settings.batch_within_s):  # type: ignore[attr-defined]
        await _process(p.process_models, batch)


@app.timer(interval=settings.model_poll_s)
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
