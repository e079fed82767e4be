"""One place that turns the security settings into each client's options.

Faust (aiokafka), confluent-kafka and redis-py spell TLS and SASL differently; every client
the project creates takes its options from here, so a setting cannot reach one and miss
another. Secrets stay ``SecretStr`` until this last step and are never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

from llmrec_stream.config import Settings


def _tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL")


def _password(settings: Settings) -> str:
    secret = settings.kafka_sasl_password
    return secret.get_secret_value() if secret is not None else ""


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verifying TLS context for aiokafka (CA from settings, else the system store)."""
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    return context


def confluent_config(settings: Settings) -> dict[str, str]:
    """librdkafka properties for confluent-kafka producers, consumers and admin clients."""
    conf: dict[str, str] = {"security.protocol": settings.kafka_security_protocol}
    if _sasl(settings):
        conf |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": _password(settings),
        }
    if _tls(settings):
        for key, value in (
            ("ssl.ca.location", settings.kafka_ssl_cafile),
            ("ssl.certificate.location", settings.kafka_ssl_certfile),
            ("ssl.key.location", settings.kafka_ssl_keyfile),
        ):
            if value:
                conf[key] = value
    return conf


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for the Faust app: None, SSL or SASL credentials."""
    import faust

    if _sasl(settings):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=kafka_ssl_context(settings) if _tls(settings) else None,
        )
    if _tls(settings):
        return faust.SSLCredentials(kafka_ssl_context(settings))
    return None


def redis_options(settings: Settings) -> dict[str, Any]:
    """Keyword options for ``redis.Redis.from_url`` (ACL user, password, TLS CA)."""
    opts: dict[str, Any] = {}
    if settings.redis_username:
        opts["username"] = settings.redis_username
    if settings.redis_password is not None:
        opts["password"] = settings.redis_password.get_secret_value()
    if settings.redis_ssl_ca_certs:
        opts["ssl_ca_certs"] = settings.redis_ssl_ca_certs
    return opts
