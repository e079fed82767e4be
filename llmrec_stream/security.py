"""One place that turns the security settings into each client's options.

Each function takes the one section it reads (``settings.kafka`` or ``settings.redis``).

Faust (aiokafka), confluent-kafka and redis-py spell TLS and SASL differently; every client
the project creates takes its options from here, so a setting cannot reach one and miss
another. Secrets stay ``SecretStr`` until this last step and are never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

from llmrec_stream.config import KafkaSettings, RedisSettings


def _tls(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol in ("SSL", "SASL_SSL")


def _sasl(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol.startswith("SASL")


def _password(kafka: KafkaSettings) -> str:
    secret = kafka.sasl_password
    return secret.get_secret_value() if secret is not None else ""


def kafka_ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Verifying TLS context for aiokafka (CA from settings, else the system store)."""
    context = ssl.create_default_context(cafile=kafka.ssl_cafile or None)
    if kafka.ssl_certfile:
        context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None)
    return context


def confluent_config(kafka: KafkaSettings) -> dict[str, str]:
    """librdkafka properties for confluent-kafka producers, consumers and admin clients."""
    conf: dict[str, str] = {"security.protocol": kafka.security_protocol}
    if _sasl(kafka):
        conf |= {
            "sasl.mechanism": kafka.sasl_mechanism,
            "sasl.username": kafka.sasl_username,
            "sasl.password": _password(kafka),
        }
    if _tls(kafka):
        for key, value in (
            ("ssl.ca.location", kafka.ssl_cafile),
            ("ssl.certificate.location", kafka.ssl_certfile),
            ("ssl.key.location", kafka.ssl_keyfile),
        ):
            if value:
                conf[key] = value
    return conf


def faust_credentials(kafka: KafkaSettings) -> Any:
    """``broker_credentials`` for the Faust app: None, SSL or SASL credentials."""
    import faust

    if _sasl(kafka):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=_password(kafka),
            mechanism=kafka.sasl_mechanism,
            ssl_context=kafka_ssl_context(kafka) if _tls(kafka) else None,
        )
    if _tls(kafka):
        return faust.SSLCredentials(kafka_ssl_context(kafka))
    return None


def redis_options(redis: RedisSettings) -> dict[str, Any]:
    """Keyword options for ``redis.Redis.from_url`` (ACL user, password, TLS CA)."""
    opts: dict[str, Any] = {}
    if redis.username:
        opts["username"] = redis.username
    if redis.password is not None:
        opts["password"] = redis.password.get_secret_value()
    if redis.ssl_ca_certs:
        opts["ssl_ca_certs"] = redis.ssl_ca_certs
    return opts
