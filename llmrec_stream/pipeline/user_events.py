"""One micro-batch, end to end: decode → encode → update profiles → retrieve → rank → publish.

The same code runs in the Faust worker, in tests, in benchmarks and in replays; it knows
nothing about Faust. Its inputs are raw records; its outputs go to a ``Sink``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from llmrec_stream import explain
from llmrec_stream.dlq import DEFAULT_VALUE_PREFIX_BYTES, DeadLetterFormat
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import (
    Campaign,
    Comment,
    Envelope,
    Erasure,
    Follow,
    Item,
    Source,
    UserEvent,
)
from llmrec_stream.events.records import RawRecord
from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import FusionWeights, Vector, contribution
from llmrec_stream.profiles.store import Contribution, ProfileState, ProfileStore
from llmrec_stream.publish import Sink, recommendation_record
from llmrec_stream.ranking.protocol import Ranker
from llmrec_stream.ranking.registry import ModelFollower
from llmrec_stream.ranking.shadow import ShadowRun
from llmrec_stream.redis_conn import RETRYABLE
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.sentiment import TextSignals
from llmrec_stream.social.blend import SocialBlend
from llmrec_stream.sponsored.slots import Sponsor

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


@dataclass(frozen=True, slots=True)
class PreparedEvents:
    """A micro-batch of user events decoded, checked and encoded, not yet applied."""

    envelopes: list[Envelope]
    texts: dict[int, Vector]  # id(envelope) -> text vector, for comments
    outcome: BatchOutcome


class Pipeline:
    """Processes micro-batches of user events and of catalog items."""

    def __init__(
        self,
        *,
        encoder: TextEncoder,
        store: ProfileStore,
        catalog: Catalog,
        ranker: Ranker,
        sink: Sink,
        metrics: Metrics,
        weights: FusionWeights,
        limits: Limits,
        top_k: int = 20,
        worker_id: str = "worker",
        retry_max_s: float = 5.0,
        models: ModelFollower | None = None,
        unknown_item_wait_s: float = 0.0,
        dlq_value_prefix_bytes: int = DEFAULT_VALUE_PREFIX_BYTES,
        dlq_send_attempts: int = 5,
        explain_max_events: int = 3,
        sponsor: Sponsor | None = None,
        social: SocialBlend | None = None,
        shadow: ShadowRun | None = None,
        text_signals: TextSignals | None = None,
    ) -> None:
        """``unknown_item_wait_s``: how long a batch waits for an item it names to reach the
        catalog (`_drop_unknown_items`); 0 dead-letters an unknown item at once."""
        self.encoder = encoder
        self.store = store
        self.catalog = catalog
        self.ranker = ranker
        self.sink = sink
        self.metrics = metrics
        self.weights = weights
        self.limits = limits
        self.top_k = top_k
        self.worker_id = worker_id
        self.retry_max_s = retry_max_s
        self.models = models
        self.unknown_item_wait_s = unknown_item_wait_s
        self.dead_letter_format = DeadLetterFormat(worker_id, dlq_value_prefix_bytes)
        self.dlq_send_attempts = dlq_send_attempts
        self.explain_max_events = explain_max_events
        self.sponsor = sponsor
        """Places sponsored items (`llmrec_stream.sponsored`); None: organic lists only."""
        self.social = social
        """Blends in the followees' profiles (`llmrec_stream.social`); None: own profile only."""
        self.shadow = shadow
        """Ranks beside the live model, unpublished, and scores both (`ranking.shadow`)."""
        self.text_signals = text_signals
        """Sentiment and aspects from text (`llmrec_stream.sentiment`); None: ratings only."""
        # onnxruntime releases the GIL: encoding in a thread keeps the event loop (and the
        # consumer's heartbeats) running. One thread: batches are sequential anyway.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="encoder")
        metrics.model_version.labels(ranker.version).set(1)

    # --- entry points -------------------------------------------------------------------

    async def process_items(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Encode catalog items and share their vectors with every worker.

        Items the catalog already holds with the same content (`Catalog.stale`: the start-up
        bootstrap encoded them, or this is a replay) are counted as skipped, not encoded again.
        """
        outcome = BatchOutcome(consumed=len(records))
        latest: dict[str, Item] = {}
        for env in await self._decode(records, outcome):
            assert isinstance(env.event, Item)  # noqa: S101 - decode keys on the topic
            latest[env.event.item_id] = env.event  # a later update of an item wins
        fresh = list(latest.values())
        items = await self._retry(lambda: self.catalog.stale(fresh)) if fresh else []
        outcome.skipped = len(fresh) - len(items)
        if items:
            vectors = await self._encode([it.text() for it in items])
            await self._retry(lambda: self.catalog.publish(items, vectors))
            self.metrics.items.set(len(self.catalog.index))
            outcome.applied = len(items)
        return outcome

    async def process_sponsored(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Campaigns of ``llmrec.sponsored`` into the table every worker mirrors.

        A null value (a tombstone of the compacted topic) withdraws its campaign; a targeting
        query is encoded here, once, and stored with the campaign. Without a sponsor (sponsored
        slots off) the records are only counted.
        """
        outcome = BatchOutcome(consumed=len(records))
        if self.sponsor is None:
            return outcome
        table = self.sponsor.table
        gone = [r.key.decode("utf-8", errors="replace") for r in records
                if r.value is None and r.key]
        latest: dict[str, Campaign] = {}
        for env in await self._decode([r for r in records if r.value is not None], outcome):
            assert isinstance(env.event, Campaign)  # noqa: S101 - decode keys on the topic
            latest[env.event.campaign_id] = env.event
        if gone:
            await self._retry(lambda: table.withdraw(gone))
        campaigns = [c for c in latest.values() if c.campaign_id not in gone]
        if campaigns:
            texts = [c.query for c in campaigns if c.query]
            vectors = iter(await self._encode(texts)) if texts else iter(())
            queries = [next(vectors) if c.query else None for c in campaigns]
            await self._retry(lambda: table.upsert(campaigns, queries))
        outcome.applied = len(campaigns) + len(gone)
        return outcome

    async def process_erasures(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Right to erasure: delete the user's personal keys, then tombstone their
        recommendations.

        The store keeps a marker (erased-at, offset watermarks) in the user's own keys, so an
        event batch already in flight or a replay from offset 0 cannot bring the user back.
        The tombstone goes out even for an erasure applied before (a replay, or a crash
        between the two steps): another null record is harmless.
        """
        outcome = BatchOutcome(consumed=len(records))
        for env in await self._decode(records, outcome):
            assert isinstance(env.event, Erasure)  # noqa: S101 - decode keys on the topic
            event, source = env.event, env.source
            erased = await self._retry(
                lambda e=event, s=source: self.store.erase(e.user_id, e.ts, s)  # type: ignore[misc]
            )
            outcome.deliveries.append(await self.sink.tombstone(event.user_id))
            if erased:
                outcome.applied += 1
            else:
                outcome.skipped += 1
            log.info("erased user at %s[%d]@%d%s", source.topic, source.partition,
                     source.offset, "" if erased else " (applied before)")
        return outcome

    async def process_models(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Records of ``llmrec.models``: check each artifact and decide its promotion.

        An invalid record or artifact is a dead letter with its reason; a valid model that
        evaluates below the live one is counted and logged, not promoted. Every worker then
        picks up the live pointer through `follow_models`.
        """
        outcome = BatchOutcome(consumed=len(records))
        models = self.models
        if models is None:
            return outcome
        for r in records:
            decision = await self._retry(lambda v=r.value: models.consider(v))  # type: ignore[misc]
            self.metrics.model_decisions.labels(decision.reason).inc()
            if decision.promoted:
                outcome.applied += 1
            elif decision.dead_letter:
                rejected = Rejected(f"model_{decision.reason}", decision.detail,
                                    Source(r.topic, r.partition, r.offset),
                                    "ModelArtifactError", r.key, r.value)
                await self._dead_letter(rejected, outcome)
        return outcome

    async def follow_models(self) -> bool:
        """Swap in the live model if it moved; True when a swap happened."""
        if self.shadow is not None:
            await self.shadow.follow()
        if self.models is None:
            return False
        found = await self.models.poll()
        if found is None:
            return False
        record, ranker = found
        self.swap_ranker(ranker)
        log.info("now serving model %s", record.version)
        return True

    def swap_ranker(self, ranker: Ranker) -> None:
        """Atomic between micro-batches: a batch reads ``self.ranker`` once."""
        self.metrics.model_version.clear()
        self.metrics.model_version.labels(ranker.version).set(1)
        self.ranker = ranker

    async def process_events(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Apply user events to profiles and publish fresh top-k for every touched user."""
        return await self.apply_events(await self.prepare_events(records))

    async def prepare_events(self, records: Sequence[RawRecord]) -> PreparedEvents:
        """The first half of `process_events`: decode, check items, encode comments.

        Touches no profile, so it may run for the next micro-batch while `apply_events`
        runs for this one (the stream agent does: the encoder then rarely waits on Redis,
        ranking or the producer). Bad records are dead letters already.
        """
        outcome = BatchOutcome(consumed=len(records))
        envelopes = await self._decode(records, outcome)
        envelopes = await self._drop_unknown_items(envelopes, outcome)
        texts = await self._encode_comments(envelopes)
        return PreparedEvents(envelopes, texts, outcome)

    async def apply_events(self, prepared: PreparedEvents) -> BatchOutcome:
        """The second half: update profiles, rank, publish. Batches must come in order."""
        outcome = prepared.outcome
        batch: dict[str, list[Contribution]] = defaultdict(list)
        for env in prepared.envelopes:
            event = env.event
            assert not isinstance(event, Item | Erasure | Campaign)  # noqa: S101 - own agents
            item_id = getattr(event, "item_id", None)
            item_vec = None if item_id is None else self.catalog.index.vector(item_id)
            text_vec = prepared.texts.get(id(env))
            aspects: tuple[float, ...] = ()
            if self.text_signals is None:
                tc, bc = contribution(event, text_vec, item_vec, self.weights)
            else:  # sentiment signs an unrated comment; aspects (`llmrec_stream.sentiment`)
                tc, bc, aspects = self.text_signals.apply(event, text_vec, item_vec, self.weights)
            # a comment is remembered (for reasons) as a sketch of its vector, never its text
            sk = b"" if text_vec is None else explain.sketch(text_vec)
            batch[event.user_id].append(Contribution(event, env.source, tc, bc, sk, aspects))
        if not batch:
            return outcome
        started = time.perf_counter()
        states = await self._retry(lambda: self.store.apply(batch))
        self.metrics.profile_latency.observe(time.perf_counter() - started)
        for state in states:
            for c, applied in zip(batch[state.user_id], state.applied, strict=True):
                if applied and isinstance(c.event, Follow):
                    self.metrics.social_follows.labels(
                        "follow" if c.event.follow else "unfollow").inc()
            n_applied = sum(state.applied)
            outcome.applied += n_applied
            outcome.skipped += len(state.applied) - n_applied
        self.metrics.skipped.inc(outcome.skipped)
        # a user erased after every event of this batch gets nothing (the tombstone is last)
        await self._recommend([s for s in states if not s.all_refused], batch, outcome)
        return outcome

    # --- steps --------------------------------------------------------------------------

    async def _decode(self, records: Sequence[RawRecord], outcome: BatchOutcome) -> list[Envelope]:
        good: list[Envelope] = []
        for r in records:
            self.metrics.events.labels(r.topic).inc()
            result = decode(r.topic, r.key, r.value, Source(r.topic, r.partition, r.offset),
                            self.limits)
            if isinstance(result, Rejected):
                await self._dead_letter(result, outcome)
            else:
                good.append(result)
        return good

    async def _drop_unknown_items(
        self, envelopes: list[Envelope], outcome: BatchOutcome
    ) -> list[Envelope]:
        """Dead-letter the events whose item the catalog does not know, after a bounded wait.

        Catalog first: a worker has read ``llmrec.items`` to its end before this runs (see
        `worker.build_pipeline`), so during live traffic an unknown item is one published
        moments ago, still being encoded by the worker that owns its partition. The batch
        waits up to ``unknown_item_wait_s`` for it, looking it up in Redis again and again.
        """
        wanted = [i for e in envelopes if (i := getattr(e.event, "item_id", None)) is not None]
        unknown = await self._retry(lambda: self.catalog.resolve(wanted)) if wanted else set()
        if unknown and self.unknown_item_wait_s > 0:
            unknown = await self._await_items(unknown)
        kept: list[Envelope] = []
        for env in envelopes:
            item_id = getattr(env.event, "item_id", None)
            if item_id in unknown:
                rejected = Rejected(
                    "unknown_item", f"item {item_id!r} is not in the catalog", env.source,
                    "UnknownItem", None, None,
                )
                await self._dead_letter(rejected, outcome)
            else:
                kept.append(env)
        return kept

    async def _await_items(self, unknown: set[str]) -> set[str]:
        """Look these ids up until they exist or the wait is over; returns those still unknown."""
        deadline = time.monotonic() + self.unknown_item_wait_s
        delay = 0.05
        waiting = unknown
        while waiting and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.5)
            ids = sorted(waiting)
            waiting = await self._retry(lambda ids=ids: self.catalog.resolve(ids))  # type: ignore[misc]
        self.metrics.unknown_item_waits.labels("found").inc(len(unknown - waiting))
        self.metrics.unknown_item_waits.labels("dead_letter").inc(len(waiting))
        return waiting

    async def _encode_comments(self, envelopes: list[Envelope]) -> dict[int, Vector]:
        comments = [e for e in envelopes if isinstance(e.event, Comment)]
        if not comments:
            return {}
        texts = [e.event.text for e in comments if isinstance(e.event, Comment)]
        vectors = await self._encode(texts)
        return {id(env): vec for env, vec in zip(comments, vectors, strict=True)}

    async def _encode(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(self._executor, self.encoder.encode, texts)
        self.metrics.encoder_latency.observe(time.perf_counter() - started)
        self.metrics.encoder_batch.observe(len(texts))
        return vectors

    async def _recommend(
        self,
        states: list[ProfileState],
        batch: dict[str, list[Contribution]],
        outcome: BatchOutcome,
    ) -> None:
        ranker = self.ranker  # one model for the whole batch, even if a swap lands meanwhile
        inputs: list[ProfileState] = states
        if self.social is not None and states:
            social = self.social
            # the followees' recency is measured at the follower's newest event of the batch
            now = [max(c.event.ts for c in batch[s.user_id]) for s in states]
            inputs = await self._retry(lambda: social.blend(states, now))
        # reasons below cite the user's own events (the unblended state): an item that only
        # the people they follow brought in has none (null), as the schema allows
        ranked = ranker.rank(inputs, self.top_k, self.catalog.index)
        if self.shadow is not None:
            shadow = self.shadow
            await self._retry(lambda: shadow.record(states, inputs, ranked, ranker.version, batch,
                                                    self.top_k, self.catalog.index))
        tops = [[] if r is None else list(r[1]) for r in ranked]
        campaigns: list[list[str | None]] = [[None] * len(t) for t in tops]
        if self.sponsor is not None:
            sponsor = self.sponsor
            live = [i for i, r in enumerate(ranked) if r is not None]
            found = await self._retry(lambda: sponsor.place(
                [states[i] for i in live], [tops[i] for i in live], self.catalog, self.top_k))
            for n, i in enumerate(live):
                tops[i], campaigns[i] = found[n]
        for state, result, top, placed in zip(states, ranked, tops, campaigns, strict=True):
            if result is None:
                continue
            version = result[0]
            user_id = state.user_id
            events: list[UserEvent] = [
                c.event for c, refused in zip(batch[user_id], state.refused, strict=True)
                if not refused
            ]
            trigger_ts = max(e.ts for e in events)
            reasons = explain.explain(state, [i for i, _ in top], self.catalog.index,
                                      self.weights.half_life_s, self.explain_max_events)
            signals = self.text_signals
            payload = recommendation_record(
                user_id, top, version, [e.event_id for e in events], trigger_ts, reasons, placed,
                aspects=None if signals is None else signals.named(state.aspects),
            )
            outcome.deliveries.append(await self.sink.recommendation(user_id, payload))
            self.metrics.freshness.observe(max(0.0, time.time() - trigger_ts / 1000.0))
            outcome.published[user_id] = payload
        self.metrics.recommendations.inc(len(outcome.published))
        await self._retry(lambda: self.store.cache_recommendations(outcome.published))

    async def _dead_letter(self, rejected: Rejected, outcome: BatchOutcome) -> None:
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

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
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
