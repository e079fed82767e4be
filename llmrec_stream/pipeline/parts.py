"""What every concern of the pipeline shares: decoding, dead letters, Redis retries and the
encoder thread.

User events, catalog ingest, erasure and model control (the modules beside this one) each
hold the one `StreamParts` of their worker: one encoder thread, one dead-letter format, one
retry policy, so a rejected record or a Redis outage is handled the same on every topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from llmrec_stream.dlq import DeadLetterFormat
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Envelope, Source
from llmrec_stream.events.records import RawRecord
from llmrec_stream.metrics import Metrics
from llmrec_stream.publish import Sink
from llmrec_stream.redis_conn import RETRYABLE

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class BatchOutcome:
    """What one micro-batch did; tests and the demo read it."""

    consumed: int = 0
    applied: int = 0
    skipped: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    published: dict[str, bytes] = field(default_factory=dict)
    deliveries: list[Awaitable[object]] = field(default_factory=list)
    """One per record the batch produced: resolves when the broker acknowledged it. The batch's
    offsets may be committed only after all resolved (`llmrec_stream.commit`)."""


class StreamParts:
    """Decode, dead-letter, retry and encode, for every concern of one worker's pipeline."""

    def __init__(
        self,
        *,
        encoder: TextEncoder,
        sink: Sink,
        metrics: Metrics,
        limits: Limits,
        worker_id: str,
        retry_max_s: float,
        dlq_value_prefix_bytes: int,
        dlq_send_attempts: int,
    ) -> None:
        self.encoder = encoder
        self.sink = sink
        self.metrics = metrics
        self.limits = limits
        self.retry_max_s = retry_max_s
        self.dead_letter_format = DeadLetterFormat(worker_id, dlq_value_prefix_bytes)
        self.dlq_send_attempts = dlq_send_attempts
        # onnxruntime releases the GIL: encoding in a thread keeps the event loop (and the
        # consumer's heartbeats) running. One thread: batches are sequential anyway.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="encoder")

    async def decode(self, records: Sequence[RawRecord], outcome: BatchOutcome) -> list[Envelope]:
        """The records that decode and pass the checks; the others are dead letters."""
        good: list[Envelope] = []
        for r in records:
            self.metrics.events.labels(r.topic).inc()
            result = decode(r.topic, r.key, r.value, Source(r.topic, r.partition, r.offset),
                            self.limits)
            if isinstance(result, Rejected):
                await self.dead_letter(result, outcome)
            else:
                good.append(result)
        return good

    async def encode(self, texts: list[str]) -> np.ndarray:
        """Encode in the encoder thread, off the event loop."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(self._executor, self.encoder.encode, texts)
        self.metrics.encoder_latency.observe(time.perf_counter() - started)
        self.metrics.encoder_batch.observe(len(texts))
        return vectors

    async def dead_letter(self, rejected: Rejected, outcome: BatchOutcome) -> None:
        """Count and log a rejected record and start writing its dead letter; the batch's
        commit waits for that write (`_deliver_dead_letter`) like for any other output."""
        self.metrics.dead_letters.labels(rejected.reason).inc()
        outcome.dead_letters[rejected.reason] = outcome.dead_letters.get(rejected.reason, 0) + 1
        # no detail: it may quote the record (its key, its field names); the letter has it
        log.warning(
            "dead letter %s from %s[%d]@%d (%s)", rejected.reason, rejected.source.topic,
            rejected.source.partition, rejected.source.offset, rejected.exception,
        )
        outcome.deliveries.append(asyncio.ensure_future(self._deliver_dead_letter(rejected)))

    async def _deliver_dead_letter(self, rejected: Rejected) -> None:
        """Write one dead letter until the broker acknowledges it, a bounded number of times.

        A failed try is retried with backoff (0.2 s, doubling), and every retry sends the
        minimal letter (coordinates, digests, lengths: a few hundred bytes), since a refusal may
        be about size (a ``llmrec.dlq`` with a smaller ``max.message.bytes``). When every try
        failed, the letter is counted (``llmrec_dead_letter_failures_total``), its coordinates
        and digest are logged at ERROR, and this raises: the batch then stays uncommitted and
        the worker exits, so the record itself stays in its source topic, at those coordinates,
        and is dead-lettered again after the restart. The stream waits for a writable DLQ
        rather than moving past a record that left no trace.
        """
        letter = self.dead_letter_format.letter(rejected)
        delay = 0.2
        for attempt in range(1, self.dlq_send_attempts + 1):
            try:
                await (await self.sink.dead_letter(letter.key, letter.value, letter.headers))
                return
            except Exception as exc:  # any refusal: the producer's, the broker's, a timeout
                error: Exception = exc
                if attempt == self.dlq_send_attempts:
                    break
                self.metrics.dead_letter_retries.inc()
                log.warning("dead letter for %s not written (%r); try %d of %d in %.1fs",
                            _where(rejected), exc, attempt + 1, self.dlq_send_attempts, delay)
                letter = self.dead_letter_format.minimal(rejected)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        self.metrics.dead_letter_failures.labels(rejected.reason).inc()
        digest = hashlib.sha256(rejected.value).hexdigest() if rejected.value is not None else None
        log.error("dead letter for %s (%s, value sha256 %s) not written after %d tries: %r; "
                  "its batch stays uncommitted", _where(rejected), rejected.reason, digest,
                  self.dlq_send_attempts, error)
        raise error

    async def retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry Redis calls until they succeed: the stream waits (backpressure), no loss.

        A partly applied pipeline is safe to resend: the offset watermarks skip what landed.
        """
        delay = 0.05
        while True:
            try:
                return await call()
            except RETRYABLE as exc:  # an outage, or a cluster between states
                self.metrics.redis_retries.inc()
                log.warning("redis unavailable (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    def close(self) -> None:
        """Stop the encoder thread once its batch is done, and the encoder's own threads."""
        self._executor.shutdown(wait=True)
        close = getattr(self.encoder, "close", None)  # optional: not part of `TextEncoder`
        if close is not None:
            close()


def _where(rejected: Rejected) -> str:
    src = rejected.source
    return f"{src.topic}[{src.partition}]@{src.offset}"
