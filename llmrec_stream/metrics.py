"""Prometheus metrics of a worker; names are part of the operator contract (see README)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
            "llmrec_encoder_batch_size", "Texts per encoder call.", buckets=_BATCH, registry=r
        )
        self.encoder_latency = Histogram(
            "llmrec_encoder_latency_seconds", "Encoder call latency.", buckets=_LATENCY,
            registry=r,
        )
        self.profile_latency = Histogram(
            "llmrec_profile_update_latency_seconds",
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
            "llmrec_dlq", "Events sent to the dead-letter topic, by reason.", ["reason"],
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

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped by Prometheus
        """Expose ``/metrics`` on this port (a background thread)."""
        start_http_server(port, addr=addr, registry=self.registry)
