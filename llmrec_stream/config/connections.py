"""Where the brokers and Redis are, and how to authenticate to them."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from llmrec_stream.config.base import Section, flat, redact_url


class KafkaSettings(Section):
    """Kafka: brokers, security, log reads and record framing."""

    flat_prefix: ClassVar[str] = "kafka_"

    bootstrap: str = Field(
        "", description="Kafka bootstrap servers; empty means the embedded dev stack."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol, for every client."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str = Field("", description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")
    ssl_cafile: str = Field("", description="CA bundle to verify the brokers (SSL).")
    ssl_certfile: str = Field("", description="Client certificate (mutual TLS).")
    ssl_keyfile: str = Field("", description="Client key (mutual TLS).")
    log_read_timeout_s: float = Field(
        60.0, gt=0, **flat("log_read_timeout_s"),
        description="A partition read from offset 0 (catalog bootstrap, verifier, trainer) "
        "that makes no progress this long fails with an error naming it.",
    )
    schema_registry_url: str = Field(
        "", **flat("schema_registry_url"),
        description="The Schema Registry producers that frame records use (documentation of "
        "where the ids below come from: this service never calls it).",
    )
    schema_ids: dict[str, int] = Field(
        default_factory=dict, **flat("schema_ids"),
        description="Topic -> schema id registered for its value schema, as JSON (e.g. "
        '{"llmrec.clicks": 3}). A producer of this package frames the records of a listed '
        "topic in Confluent's wire format (magic byte 0, 4-byte id); others stay plain JSON.",
    )


class RedisSettings(Section):
    """Redis: where profiles, the catalog and the caches live."""

    flat_prefix: ClassVar[str] = "redis_"

    url: str = Field("", description="Redis URL; empty means the embedded dev stack.")
    password: SecretStr | None = Field(
        None, description="Redis password, if not given in the URL."
    )
    username: str = Field("", description="Redis ACL user name (Redis 6+).")
    ssl_ca_certs: str = Field(
        "", description="CA bundle to verify Redis TLS (use a rediss:// URL for TLS)."
    )
    cluster: bool = Field(
        False,
        description="Talk to LLMREC_REDIS_URL as a Redis Cluster (any node's address; a "
        "redis+cluster:// URL says the same). Every key of one user or of the catalog shares a "
        "hash tag, so each script and transaction stays on one shard.",
    )

    def __repr_args__(self) -> Any:
        # a password may sit inside the URL: repr() and str() show it redacted
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "url" else value
