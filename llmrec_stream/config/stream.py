"""How a worker runs: its identity, micro-batches, input limits, catalog start-up, dead
letters, and what it shows operators (metrics, health probes, logs)."""

from __future__ import annotations

import socket
from functools import cached_property
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from llmrec_stream.config.base import Section, flat


class StreamSettings(Section):
    """Worker identity and stream processing."""

    app_id: str = Field("llmrec-stream", description="Faust app id (the consumer group).")
    worker_id: str = Field(
        "", description="Stable worker id for static group membership; default host-0."
    )
    partitions: int = Field(4, ge=1, description="Partitions per topic (embedded stack).")
    batch_max: int = Field(256, ge=1, description="Micro-batch: at most this many events.")
    batch_within_s: float = Field(
        0.05, gt=0, description="Micro-batch: at most this long waiting for more events."
    )
    batches_in_flight: int = Field(
        2,
        ge=1,
        description="Micro-batches of user events in flight: with 2 the next batch is decoded "
        "and encoded while this one is applied and published; 1 runs them one at a time.",
    )
    fetch_idle_backoff_ms: int = Field(
        0, ge=0, le=1000,
        description="Wait this long after an empty fetch answered early (embedded broker only).",
    )

    @cached_property
    def resolved_worker_id(self) -> str:
        return self.worker_id or f"{socket.gethostname()}-0"


class Limits(Section):
    """Input limits: what the codec accepts.

    ``events.codec.Limits`` is this section: `decode` takes it as configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_text_bytes: int = Field(8192, ge=1, description="Longest comment text accepted.")
    max_future_skew_s: float = Field(
        300.0, ge=0, description="Events stamped further in the future go to the DLQ."
    )


class CatalogSettings(Section):
    """Catalog first: the item catalog's start-up and waits."""

    flat_prefix: ClassVar[str] = "catalog_"

    bootstrap: bool = Field(
        True,
        description="At start, read llmrec.items to its end and encode what the catalog "
        "lacks before taking user events (a GlobalKTable's restore).",
    )
    unknown_item_wait_s: float = Field(
        3.0, ge=0, **flat("unknown_item_wait_s"),
        description="How long a batch waits for an item it names to reach the catalog "
        "before its events become unknown_item dead letters.",
    )


class DlqSettings(Section):
    """Dead letters."""

    flat_prefix: ClassVar[str] = "dlq_"

    value_prefix_bytes: int = Field(
        4096,
        ge=0,
        le=720_000,
        description="Bytes of a rejected value kept in its dead letter (with the whole value's "
        "sha256 and length); checked at start against the producer's max request size.",
    )
    send_attempts: int = Field(
        5,
        ge=1,
        description="Tries to write one dead letter (backoff 0.2 s doubling, the later tries "
        "without the value prefix); then the batch stays uncommitted and the worker exits.",
    )


class MetricsSettings(Section):
    """Metrics, health probes and logs."""

    flat_prefix: ClassVar[str] = "metrics_"

    port: int = Field(
        0, ge=0, description="Prometheus port of the worker; 0 disables the HTTP server."
    )
    health_check_timeout_s: float = Field(
        1.5, gt=0, **flat("health_check_timeout_s"),
        description="Each /readyz check (Kafka, Redis) and each broker request of the consumer "
        "lag metric gives up after this long.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", **flat("log_format"),
        description="Log lines as text, or as one JSON object per line (python-json-logger) "
        "for a log pipeline.",
    )
