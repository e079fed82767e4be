"""Prometheus metrics of a worker; names are an operator contract (docs/operations.md).

Names follow Prometheus' conventions: base units in the name (``_seconds``), counters exposed
with ``_total`` (prometheus_client appends it to a Counter's samples), ``_info`` for labels
that describe the process. The dashboards and alert rules in ``deploy/`` use these names, and
``tests/integration/test_prometheus.py`` evaluates every one of their expressions against a
real Prometheus scraping a worker.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_FRESHNESS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """One registry per pipeline, so tests and benchmarks can hold several side by side."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "llmrec_events_consumed", "Events consumed, by topic.", ["topic"], registry=r
        )
        self.encoder_batch = Histogram(
            "llmrec_encoder_batch_texts", "Texts per encoder call.", buckets=_BATCH, registry=r
        )
        self.encoder_latency = Histogram(
            "llmrec_encoder_duration_seconds", "Encoder call duration.", buckets=_LATENCY,
            registry=r,
        )
        self.profile_latency = Histogram(
            "llmrec_profile_update_duration_seconds",
            "One micro-batch of profile updates in Redis (one round trip).",
            buckets=_LATENCY,
            registry=r,
        )
        self.freshness = Histogram(
            "llmrec_freshness_seconds",
            "Triggering event timestamp to recommendation publish.",
            buckets=_FRESHNESS,
            registry=r,
        )
        self.recommendations = Counter(
            "llmrec_recommendations_published", "Recommendation records published.", registry=r
        )
        self.dead_letters = Counter(
            "llmrec_dead_letters", "Events sent to the dead-letter topic, by reason.", ["reason"],
            registry=r,
        )
        self.skipped = Counter(
            "llmrec_events_skipped_replay",
            "Events at or below the applied offset watermark (replays), not applied again.",
            registry=r,
        )
        self.items = Gauge("llmrec_catalog_items", "Items held in memory.", registry=r)
        self.model_version = Gauge(
            "llmrec_model_info", "The ranking model in use (value 1).", ["version"], registry=r
        )
        self.model_decisions = Counter(
            "llmrec_model_decisions",
            "Published models considered: promoted, not_better, or why they were refused.",
            ["decision"],
            registry=r,
        )
        self.redis_retries = Counter(
            "llmrec_redis_retries", "Redis calls retried after a connection error.", registry=r
        )
        # --- catalog first (issue 12: catalog) ------------------------------------------
        self.catalog_bootstrap_items = Gauge(
            "llmrec_catalog_bootstrap_items",
            "Start-up read of llmrec.items: records read, distinct items, items encoded.",
            ["stage"],
            registry=r,
        )
        self.catalog_bootstrap_seconds = Gauge(
            "llmrec_catalog_bootstrap_seconds",
            "Start-up read of llmrec.items and encoding of what the catalog lacked.",
            registry=r,
        )
        self.unknown_item_waits = Counter(
            "llmrec_unknown_item_waits",
            "Item ids a batch did not find at first: found while it waited, or dead-lettered.",
            ["outcome"],
            registry=r,
        )
        # --- dead letters and output delivery (issue 12) --------------------------------
        self.dead_letter_retries = Counter(
            "llmrec_dead_letter_retries",
            "Dead-letter writes that failed and were tried again.",
            registry=r,
        )
        self.dead_letter_failures = Counter(
            "llmrec_dead_letter_failures",
            "Dead letters not written after every try, by reason: their batch stays "
            "uncommitted (replayed after the worker exits).",
            ["reason"],
            registry=r,
        )
        # --- business features: sponsored slots (issue 14) ------------------------------
        self.sponsored_impressions = Counter(
            "llmrec_sponsored_impressions",
            "Sponsored items placed in a published top-k (each one charged).",
            registry=r,
        )
        self.sponsored_spend = Counter(
            "llmrec_sponsored_spend",
            "Money charged for sponsored impressions (bid per impression).",
            registry=r,
        )
        self.sponsored_relevance = Histogram(
            "llmrec_sponsored_relevance",
            "Cosine of each placed sponsored item to the user's profile.",
            buckets=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.sponsored_exhausted = Counter(
            "llmrec_sponsored_campaigns_exhausted",
            "Campaigns whose remaining budget no longer covers a bid (counted once each).",
            registry=r,
        )
        self.sponsored_refused = Counter(
            "llmrec_sponsored_charges_refused",
            "Placements not made because the charge was refused, by why: paced, exhausted, "
            "inactive, gone.",
            ["why"],
            registry=r,
        )
        # --- operations: process, build and consumer lag (issue 15) ----------------------
        # CPU seconds, RSS, open fds (process_*), the interpreter (python_info) and its GC,
        # as on prometheus_client's default registry, which this per-pipeline one replaces.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build = Info(
            "llmrec_build", "The running build: package version and encoder identity.",
            registry=r,
        )
        self.lag_errors = Counter(
            "llmrec_consumer_lag_errors",
            "Scrapes whose consumer lag could not be read from the broker.",
            registry=r,
        )
        # --- business features: social signals (issue 14) --------------------------------
        self.social_follows = Counter(
            "llmrec_social_follow_events",
            "Follow and unfollow events applied to follow sets (a replayed one is not), by "
            "action.",
            ["action"],
            registry=r,
        )
        self.social_followees_read = Histogram(
            "llmrec_social_followees_read",
            "Distinct followees whose profiles one micro-batch read from Redis to rank.",
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
            registry=r,
        )
        # --- business features: shadow evaluation (issue 14) -----------------------------
        self.shadow_model = Gauge(
            "llmrec_shadow_model",
            "The model this worker ranks with in shadow (1 for its version; none: no shadow).",
            ["version"],
            registry=r,
        )
        self.shadow_events = Counter(
            "llmrec_shadow_events",
            "Applied user events with an item scored against a model's previous top-k while a "
            "shadow runs, by model version and role (live or shadow).",
            ["model_version", "role"],
            registry=r,
        )
        self.shadow_hits = Counter(
            "llmrec_shadow_hits",
            "Of those events, the ones whose item was in the model's previous top-k for the "
            "user (online hit rate@k = hits / events), by model version and role.",
            ["model_version", "role"],
            registry=r,
        )
        # --- business features: sentiment and aspects from text (issue 14) ---------------
        self.sentiment_signed = Counter(
            "llmrec_sentiment_signed_comments",
            "Unrated comments on an item whose contribution the sentiment head signed, by the "
            "sign it gave (counted as processed: a comment replayed after a crash counts again).",
            ["sign"],
            registry=r,
        )
        self.aspect_updates = Counter(
            "llmrec_aspect_updates",
            "Aspect additions computed from comments (one per comment and aspect mentioned, as "
            "processed), by aspect.",
            ["aspect"],
            registry=r,
        )
        # --- business features: aspect preferences in the ranking (issue 14, item 5) ------
        self.aspect_rank_lists = Counter(
            "llmrec_aspect_rank_lists",
            "Published lists re-ranked with the aspect term (users with an aspect score, "
            "setting aspect_rank_weight not 0).",
            registry=r,
        )
        self.aspect_rank_lifted = Counter(
            "llmrec_aspect_rank_lifted_items",
            "Items in a published list that the ranker's score alone would not have put there "
            "(the aspect term brought them in), by the aspect that did.",
            ["aspect"],
            registry=r,
        )

    def describe_build(self, encoder: str) -> None:
        """Set ``llmrec_build_info{version, encoder}``: which code and which encoder serve."""
        try:
            version = importlib.metadata.version("llmrec-stream")
        except importlib.metadata.PackageNotFoundError:  # a bare source tree
            version = "unknown"
        self.build.info({"version": version, "encoder": encoder})

    def watch_lag(
        self,
        assigned: Callable[[], Iterable[tuple[str, int]]],
        measure: Callable[[list[tuple[str, int]]], Mapping[tuple[str, int], int]],
    ) -> None:
        """Export ``llmrec_consumer_lag{topic, partition}`` for the partitions ``assigned``
        returns, measured by ``measure`` (`llmrec_stream.kafka_lag.partition_lag`) at each
        scrape: Prometheus' advice for values owned by another system (the broker)."""
        self.registry.register(_LagCollector(assigned, measure, self.lag_errors))


class _LagCollector(Collector):
    """Consumer lag of this worker's partitions, read from the broker when scraped.

    Only assigned partitions are exported, so summing over workers gives the group's lag; a
    partition handed to another worker leaves this worker's series at the next scrape.
    """

    NAME = "llmrec_consumer_lag"
    HELP = ("Records after the consumer group's committed offset (end offset minus committed), "
            "per partition assigned to this worker.")

    def __init__(
        self,
        assigned: Callable[[], Iterable[tuple[str, int]]],
        measure: Callable[[list[tuple[str, int]]], Mapping[tuple[str, int], int]],
        errors: Counter,
    ) -> None:
        self._assigned = assigned
        self._measure = measure
        self._errors = errors

    def describe(self) -> Iterator[Metric]:
        # without describe(), registering would call collect() (and the broker) at once
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["topic", "partition"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["topic", "partition"])
        try:
            lag = self._measure(sorted(set(self._assigned())))
        except Exception as exc:  # the broker away: no lag series this scrape, counted
            self._errors.inc()
            log.warning("consumer lag not read (%s)", type(exc).__name__)
            lag = {}
        for (topic, partition), n in sorted(lag.items()):
            family.add_metric([topic, str(partition)], n)
        yield family
