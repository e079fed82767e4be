"""One settings tree: every knob has a type, a default and an ``LLMREC_*`` environment variable.

The reference table in ``docs/settings.md`` is generated from this class
(``llmrec-stream settings --markdown``), so the docs cannot drift from the code.
"""

from __future__ import annotations

import socket
from functools import cached_property
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration of workers, the demo and the CLI."""

    model_config = SettingsConfigDict(env_prefix="LLMREC_", extra="ignore")

    # --- where things are ---------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "", description="Kafka bootstrap servers; empty means the embedded dev stack."
    )
    redis_url: str = Field("", description="Redis URL; empty means the embedded dev stack.")
    redis_password: SecretStr | None = Field(
        None, description="Redis password, if not given in the URL."
    )
    redis_username: str = Field("", description="Redis ACL user name (Redis 6+).")
    redis_ssl_ca_certs: str = Field(
        "", description="CA bundle to verify Redis TLS (use a rediss:// URL for TLS)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol, for every client."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str = Field("", description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: str = Field("", description="CA bundle to verify the brokers (SSL).")
    kafka_ssl_certfile: str = Field("", description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: str = Field("", description="Client key (mutual TLS).")
    encoder_dir: str = Field(
        "",
        description="Exported encoder artifact directory; empty means the default cache dir.",
    )
    encoder_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the encoder runs: auto (CUDA if present), cpu or cuda."
    )
    encoder_precision: Literal["fp32", "int8"] = Field(
        "fp32", description="fp32 reference, or the int8 variant (export-encoder --int8)."
    )
    encoder_threads: int = Field(
        0, ge=0, description="onnxruntime intra-op threads per run; 0 = auto."
    )
    encoder_parallel_runs: int = Field(
        0,
        ge=0,
        description="Encoder runs at once on parts of each batch (data parallel, the cores "
        "shared out unless encoder_threads says otherwise); 0 = auto: 2 on a CPU, 1 on CUDA.",
    )
    encoder_spinning: bool = Field(
        False,
        description="Let idle onnxruntime threads busy-wait (faster on cores the worker has "
        "to itself; off, they leave the CPU to the event loop and the consumer thread).",
    )

    # --- worker identity and stream processing ------------------------------------------
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
    metrics_port: int = Field(
        0, ge=0, description="Prometheus port of the worker; 0 disables the HTTP server."
    )

    # --- profile fusion -----------------------------------------------------------------
    weight_click: float = Field(1.0, description="Behaviour weight of a click.")
    weight_purchase: float = Field(3.0, description="Behaviour weight of a purchase.")
    weight_review: float = Field(
        2.0, description="Behaviour weight of a reviewed item, times the rating's sign/scale."
    )
    weight_comment_text: float = Field(1.0, description="Weight of a comment's text vector.")
    half_life_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="Exponential time decay half-life of profiles."
    )
    mix_text: float = Field(
        0.5, ge=0, le=1, description="Share of the text vector in the fused query vector."
    )
    recent_items: int = Field(50, ge=1, description="Length of the recent-items list.")
    seen_items: int = Field(
        500, ge=0, description="Purchased items remembered for filtering (bounded)."
    )

    # --- retrieval ----------------------------------------------------------------------
    ann_min_items: int = Field(
        50_000, ge=1,
        description="Catalog size from which workers search an HNSW index instead of exactly.",
    )
    ann_connectivity: int = Field(32, ge=2, description="HNSW graph degree (M).")
    ann_expansion_search: int = Field(
        256, ge=1, description="HNSW candidate list while searching (efSearch): recall vs time."
    )
    ann_max_stale: float = Field(
        0.25, ge=0,
        description="Rebuild the HNSW graph when replaced items' rows pass this share of items.",
    )

    # --- recommendations and input limits -----------------------------------------------
    top_k: int = Field(20, ge=1, description="Recommendations published per user.")
    model_dir: str = Field(
        "", description="Ranking model artifact served at start while none is promoted."
    )
    model_poll_s: float = Field(
        1.0, gt=0, description="How often a worker checks which model is live."
    )
    max_text_bytes: int = Field(8192, ge=1, description="Longest comment text accepted.")
    max_future_skew_s: float = Field(
        300.0, ge=0, description="Events stamped further in the future go to the DLQ."
    )

    # --- catalog first, log reads, encoder identity (issue 12: catalog) --------------------
    catalog_bootstrap: bool = Field(
        True,
        description="At start, read llmrec.items to its end and encode what the catalog "
        "lacks before taking user events (a GlobalKTable's restore).",
    )
    unknown_item_wait_s: float = Field(
        3.0, ge=0,
        description="How long a batch waits for an item it names to reach the catalog "
        "before its events become unknown_item dead letters.",
    )
    log_read_timeout_s: float = Field(
        60.0, gt=0,
        description="A partition read from offset 0 (catalog bootstrap, verifier, trainer) "
        "that makes no progress this long fails with an error naming it.",
    )

    # --- dead letters and output delivery (issue 12) ------------------------------------
    dlq_value_prefix_bytes: int = Field(
        4096,
        ge=0,
        le=720_000,
        description="Bytes of a rejected value kept in its dead letter (with the whole value's "
        "sha256 and length); checked at start against the producer's max request size.",
    )
    dlq_send_attempts: int = Field(
        5,
        ge=1,
        description="Tries to write one dead letter (backoff 0.2 s doubling, the later tries "
        "without the value prefix); then the batch stays uncommitted and the worker exits.",
    )

    # --- trainer input from the event log (issue 16: quality) ----------------------------
    trainer_collapse_window_ms: int = Field(
        60_000,
        ge=0,
        description="Events of one user on one item closer than this (ms, to the first of the "
        "run) are one interaction for the trainer, typed by the strongest event (purchase > "
        "comment > click): a replayed review is a comment and a purchase at once. 0: keep all.",
    )

    @cached_property
    def resolved_worker_id(self) -> str:
        return self.worker_id or f"{socket.gethostname()}-0"

    def __repr_args__(self) -> Any:
        # a password may sit inside the Redis URL: repr() and str() show it redacted
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "redis_url" else value

    def as_dict(self) -> dict[str, Any]:
        """Settings with secrets redacted, safe to log or print."""
        out = self.model_dump()
        for name, value in out.items():
            if isinstance(getattr(self, name), SecretStr) and value is not None:
                out[name] = "**********"
        out["redis_url"] = redact_url(self.redis_url)
        return out


def redact_url(url: str) -> str:
    """The URL with any password (user-info or ``?password=``) replaced, for logs and output."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL, redacted>"
    netloc = parts.netloc
    if password is not None:
        user = f"{parts.username}:" if parts.username else ":"
        netloc = f"{user}**********@{netloc.rsplit('@', 1)[1]}"
    query = [
        (k, "**********" if k.lower() == "password" else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
