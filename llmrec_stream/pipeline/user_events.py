"""User events, end to end: decode → encode → update profiles → retrieve → rank → publish.

The same code runs in the Faust worker, in tests, in benchmarks and in replays; it knows
nothing about Faust. Its inputs are raw records; its outputs go to a ``Sink``. The parts it
shares with the other topics' concerns (decode, dead letters, retries, the encoder thread)
are in `llmrec_stream.pipeline.parts`; the live ranker is model control's.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from llmrec_stream import explain
from llmrec_stream.events.codec import Rejected
from llmrec_stream.events.models import (
    Campaign,
    Comment,
    Envelope,
    Erasure,
    Follow,
    Item,
    UserEvent,
)
from llmrec_stream.events.records import RawRecord
from llmrec_stream.pipeline.model_control import ModelControl
from llmrec_stream.pipeline.parts import BatchOutcome, StreamParts
from llmrec_stream.profiles.fusion import FusionWeights, Vector, contribution
from llmrec_stream.profiles.store import Contribution, ProfileState, ProfileStore
from llmrec_stream.publish import recommendation_record
from llmrec_stream.ranking.aspects import AspectTerm, Lift
from llmrec_stream.ranking.protocol import Ranked
from llmrec_stream.ranking.shadow import ShadowRun
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.sentiment import TextSignals
from llmrec_stream.social.blend import SocialBlend
from llmrec_stream.sponsored.slots import Sponsor


@dataclass(frozen=True, slots=True)
class PreparedEvents:
    """A micro-batch of user events decoded, checked and encoded, not yet applied."""

    envelopes: list[Envelope]
    texts: dict[int, Vector]  # id(envelope) -> text vector, for comments
    outcome: BatchOutcome


class UserEvents:
    """Micro-batches of user events: profiles updated, fresh top-k published per user."""

    def __init__(
        self,
        parts: StreamParts,
        control: ModelControl,
        *,
        store: ProfileStore,
        catalog: Catalog,
        weights: FusionWeights,
        top_k: int,
        unknown_item_wait_s: float,
        explain_max_events: int,
        sponsor: Sponsor | None,
        social: SocialBlend | None,
        shadow: ShadowRun | None,
        text_signals: TextSignals | None,
    ) -> None:
        """``unknown_item_wait_s``: how long a batch waits for an item it names to reach the
        catalog (`_drop_unknown_items`); 0 dead-letters an unknown item at once."""
        self.parts = parts
        self.control = control
        """Holds the live ranker, read once per batch (a swap lands between batches)."""
        self.store = store
        self.catalog = catalog
        self.weights = weights
        self.top_k = top_k
        self.unknown_item_wait_s = unknown_item_wait_s
        self.explain_max_events = explain_max_events
        self.sponsor = sponsor
        """Places sponsored items (`llmrec_stream.sponsored`); None: organic lists only."""
        self.social = social
        """Blends in the followees' profiles (`llmrec_stream.social`); None: own profile only."""
        self.shadow = shadow
        """Ranks beside the live model, unpublished, and scores both (`ranking.shadow`)."""
        self.text_signals = text_signals
        """Sentiment and aspects from text (`llmrec_stream.sentiment`); None: ratings only."""
        self.aspect_term: AspectTerm | None = None
        """The users' aspect scores in the ranking (`llmrec_stream.ranking.aspects`), live and
        shadow alike; None: off (no aspect anchors, or weight 0)."""
        anchors = None if text_signals is None else text_signals.heads.aspects
        if text_signals is not None and anchors is not None and text_signals.rank_weight:
            self.aspect_term = AspectTerm(anchors, text_signals.rank_weight,
                                          text_signals.rank_pool, parts.metrics)

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
        envelopes = await self.parts.decode(records, outcome)
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
        states = await self.parts.retry(lambda: self.store.apply(batch))
        self.parts.metrics.profile_latency.observe(time.perf_counter() - started)
        for state in states:
            for c, applied in zip(batch[state.user_id], state.applied, strict=True):
                if applied and isinstance(c.event, Follow):
                    self.parts.metrics.social_follows.labels(
                        "follow" if c.event.follow else "unfollow").inc()
            n_applied = sum(state.applied)
            outcome.applied += n_applied
            outcome.skipped += len(state.applied) - n_applied
        self.parts.metrics.skipped.inc(outcome.skipped)
        # a user erased after every event of this batch gets nothing (the tombstone is last)
        await self._recommend([s for s in states if not s.all_refused], batch, outcome)
        return outcome

    # --- steps --------------------------------------------------------------------------

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
        unknown = await self.parts.retry(lambda: self.catalog.resolve(wanted)) if wanted else set()
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
                await self.parts.dead_letter(rejected, outcome)
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
            waiting = await self.parts.retry(lambda ids=ids: self.catalog.resolve(ids))  # type: ignore[misc]
        self.parts.metrics.unknown_item_waits.labels("found").inc(len(unknown - waiting))
        self.parts.metrics.unknown_item_waits.labels("dead_letter").inc(len(waiting))
        return waiting

    async def _encode_comments(self, envelopes: list[Envelope]) -> dict[int, Vector]:
        comments = [e for e in envelopes if isinstance(e.event, Comment)]
        if not comments:
            return {}
        texts = [e.event.text for e in comments if isinstance(e.event, Comment)]
        vectors = await self.parts.encode(texts)
        return {id(env): vec for env, vec in zip(comments, vectors, strict=True)}

    async def _recommend(
        self,
        states: list[ProfileState],
        batch: dict[str, list[Contribution]],
        outcome: BatchOutcome,
    ) -> None:
        # one model for the whole batch, even if a swap lands meanwhile
        ranker = self.control.ranker
        inputs: list[ProfileState] = states
        if self.social is not None and states:
            social = self.social
            # the followees' recency is measured at the follower's newest event of the batch
            now = [max(c.event.ts for c in batch[s.user_id]) for s in states]
            inputs = await self.parts.retry(lambda: social.blend(states, now))
        # reasons below cite the user's own events (the unblended state): an item that only
        # the people they follow brought in has none (null), as the schema allows
        term = self.aspect_term
        lifted: list[dict[str, Lift]] = [{} for _ in inputs]
        ranked: list[Ranked]
        if term is None:
            ranked = ranker.rank(inputs, self.top_k, self.catalog.index)
        else:  # the user's aspect scores re-rank the ranker's candidates
            ranked, lifted = term.rank(ranker, inputs, self.top_k, self.catalog.index)
        if self.shadow is not None:
            shadow = self.shadow
            wrap = None if term is None else term.wrap
            await self.parts.retry(lambda: shadow.record(
                states, inputs, ranked, ranker.version, batch, self.top_k, self.catalog.index,
                rerank=wrap))
        tops = [[] if r is None else list(r[1]) for r in ranked]
        campaigns: list[list[str | None]] = [[None] * len(t) for t in tops]
        if self.sponsor is not None:
            sponsor = self.sponsor
            live = [i for i, r in enumerate(ranked) if r is not None]
            found = await self.parts.retry(lambda: sponsor.place(
                [states[i] for i in live], [tops[i] for i in live], self.catalog, self.top_k))
            for n, i in enumerate(live):
                tops[i], campaigns[i] = found[n]
        for state, result, top, placed, lifts in zip(states, ranked, tops, campaigns, lifted,
                                                     strict=True):
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
            if lifts and term is not None:  # what the aspect term brought in says so
                reasons = explain.with_aspects(reasons, [i for i, _ in top], lifts, state,
                                               term.anchors)
            signals = self.text_signals
            payload = recommendation_record(
                user_id, top, version, [e.event_id for e in events], trigger_ts, reasons, placed,
                aspects=None if signals is None else signals.named(state.aspects),
            )
            outcome.deliveries.append(await self.parts.sink.recommendation(user_id, payload))
            self.parts.metrics.freshness.observe(max(0.0, time.time() - trigger_ts / 1000.0))
            outcome.published[user_id] = payload
        self.parts.metrics.recommendations.inc(len(outcome.published))
        await self.parts.retry(lambda: self.store.cache_recommendations(outcome.published))
