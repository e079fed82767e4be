"""Security settings reach every client, and secrets never show."""

from __future__ import annotations

import json

import faust
import pytest

from llmrec_stream.config import Settings
from llmrec_stream.security import confluent_config, faust_credentials, redis_options

SECRET = "s3cr3t-canary-Xy9"  # noqa: S105 - a test canary


def test_plaintext_by_default() -> None:
    s = Settings()
    assert confluent_config(s.kafka) == {"security.protocol": "PLAINTEXT"}
    assert faust_credentials(s.kafka) is None
    assert redis_options(s.redis) == {}


def test_sasl_scram_over_tls_reaches_confluent_and_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LLMREC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LLMREC_KAFKA_SASL_USERNAME", "svc-llmrec")
    monkeypatch.setenv("LLMREC_KAFKA_SASL_PASSWORD", SECRET)
    s = Settings()
    conf = confluent_config(s.kafka)
    assert conf == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc-llmrec",
        "sasl.password": SECRET,
    }
    creds = faust_credentials(s.kafka)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "svc-llmrec" and creds.password == SECRET
    assert creds.ssl_context is not None


def test_tls_only_gives_faust_ssl_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert isinstance(faust_credentials(Settings().kafka), faust.SSLCredentials)
    assert "sasl.password" not in confluent_config(Settings().kafka)


def test_redis_acl_user_password_and_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_USERNAME", "llmrec")
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    monkeypatch.setenv("LLMREC_REDIS_SSL_CA_CERTS", "/etc/ssl/ca.pem")
    assert redis_options(Settings().redis) == {
        "username": "llmrec",
        "password": SECRET,
        "ssl_ca_certs": "/etc/ssl/ca.pem",
    }


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    monkeypatch.setenv("LLMREC_REDIS_URL", f"redis://u:{SECRET}@h:6379/0")
    s = Settings()
    for shown in (repr(s), str(s), json.dumps(s.as_dict(), default=str)):
        assert SECRET not in shown
