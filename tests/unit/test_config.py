"""The settings tree: defaults, ``LLMREC_*`` overrides, validation, and no leaked secrets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError

from llmrec_stream.config import Settings

SECRET = "hunter2-s3cr3t"  # noqa: S105 - a test value
REDACTED = "**********"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LLMREC_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("LLMREC_"):
            monkeypatch.delenv(name)
    yield


DEFAULTS = {
    "kafka_bootstrap": "",
    "redis_url": "",
    "redis_password": None,
    "encoder_dir": "",
    "encoder_device": "auto",
    "encoder_threads": 0,
    "app_id": "llmrec-stream",
    "worker_id": "",
    "partitions": 4,
    "batch_max": 256,
    "batch_within_s": 0.05,
    "metrics_port": 0,
    "weight_click": 1.0,
    "weight_purchase": 3.0,
    "weight_review": 2.0,
    "weight_comment_text": 1.0,
    "half_life_s": 604800.0,
    "mix_text": 0.5,
    "recent_items": 50,
    "seen_items": 500,
    "top_k": 20,
    "max_text_bytes": 8192,
    "max_future_skew_s": 300.0,
}


def test_defaults() -> None:
    out = Settings().as_dict()
    assert set(out) == set(Settings.model_fields)
    assert {name: out[name] for name in DEFAULTS} == DEFAULTS


def test_every_setting_is_documented() -> None:
    # The docs table is generated from these descriptions.
    for name, field in Settings.model_fields.items():
        assert field.description, name


def test_defaults_agree_with_the_library_defaults() -> None:
    from llmrec_stream.events.codec import Limits
    from llmrec_stream.profiles.fusion import FusionWeights

    s, w, lim = Settings(), FusionWeights(), Limits()
    assert (s.weight_click, s.weight_purchase, s.weight_review, s.weight_comment_text) == (
        w.click,
        w.purchase,
        w.review,
        w.comment_text,
    )
    assert (s.half_life_s, s.mix_text) == (w.half_life_s, w.mix_text)
    assert (s.max_text_bytes, s.max_future_skew_s) == (lim.max_text_bytes, lim.max_future_skew_s)


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("LLMREC_TOP_K", "7", 7),
        ("LLMREC_PARTITIONS", "12", 12),
        ("LLMREC_MIX_TEXT", "0.8", 0.8),
        ("LLMREC_HALF_LIFE_S", "3600", 3600.0),
        ("LLMREC_KAFKA_BOOTSTRAP", "broker-1:9092,broker-2:9092", "broker-1:9092,broker-2:9092"),
        ("LLMREC_REDIS_URL", "redis://cache:6379/2", "redis://cache:6379/2"),
        ("LLMREC_ENCODER_DEVICE", "cuda", "cuda"),
        ("LLMREC_WEIGHT_PURCHASE", "5.5", 5.5),
        ("LLMREC_MAX_TEXT_BYTES", "100", 100),
        ("LLMREC_BATCH_WITHIN_S", "0.2", 0.2),
        ("llmrec_top_k", "9", 9),  # case-insensitive, as pydantic-settings reads env
    ],
)
def test_env_override(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)
    name = env.upper().removeprefix("LLMREC_").lower()
    assert getattr(Settings(), name) == expected


def test_every_setting_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    samples: dict[type, tuple[str, object]] = {
        str: ("x-1", "x-1"),
        int: ("3", 3),
        float: ("0.25", 0.25),
        bool: ("true", True),
    }
    literals = {
        "encoder_device": ("cpu", "cpu"),
        "encoder_precision": ("int8", "int8"),
        "encoder_backend": ("onnxruntime", "onnxruntime"),
        "kafka_security_protocol": ("SASL_SSL", "SASL_SSL"),
        "kafka_sasl_mechanism": ("SCRAM-SHA-256", "SCRAM-SHA-256"),
        "sponsored_positions": ("2,5", "2,5"),  # a pattern: comma-separated positions
        "schema_ids": ('{"llmrec.clicks": 3}', {"llmrec.clicks": 3}),
        "log_format": ("json", "json"),
    }
    # SecretStr: test_security covers them
    secrets = {"redis_password", "kafka_sasl_password", "api_token"}
    expected = {}
    for name, field in Settings.model_fields.items():
        if name in secrets:
            continue
        raw, expected[name] = literals.get(name) or samples[type(field.default)]
        monkeypatch.setenv(f"LLMREC_{name.upper()}", raw)
    s = Settings()
    for name, want in expected.items():
        assert getattr(s, name) == want, name


def test_unrelated_env_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_NOT_A_SETTING", "1")
    monkeypatch.setenv("TOP_K", "3")
    assert Settings().top_k == 20


def test_constructor_arguments_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_TOP_K", "7")
    assert Settings(top_k=3).top_k == 3


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("LLMREC_TOP_K", "0"),
        ("LLMREC_TOP_K", "-1"),
        ("LLMREC_TOP_K", "many"),
        ("LLMREC_TOP_K", "2.5"),
        ("LLMREC_PARTITIONS", "0"),
        ("LLMREC_BATCH_MAX", "0"),
        ("LLMREC_BATCH_WITHIN_S", "0"),
        ("LLMREC_HALF_LIFE_S", "0"),
        ("LLMREC_HALF_LIFE_S", "-5"),
        ("LLMREC_MIX_TEXT", "1.5"),
        ("LLMREC_MIX_TEXT", "-0.1"),
        ("LLMREC_RECENT_ITEMS", "0"),
        ("LLMREC_SEEN_ITEMS", "-1"),
        ("LLMREC_MAX_TEXT_BYTES", "0"),
        ("LLMREC_MAX_FUTURE_SKEW_S", "-1"),
        ("LLMREC_ENCODER_THREADS", "-1"),
        ("LLMREC_METRICS_PORT", "-1"),
        ("LLMREC_WEIGHT_CLICK", "heavy"),
    ],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    monkeypatch.setenv(env, value)
    field = env.removeprefix("LLMREC_").lower()
    with pytest.raises(ValidationError) as info:
        Settings()
    assert field in str(info.value)


def test_bad_constructor_value_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(mix_text=2)


def test_boundary_values_are_accepted() -> None:
    s = Settings(mix_text=0, top_k=1, seen_items=0, max_future_skew_s=0, metrics_port=0)
    assert (s.mix_text, s.top_k, s.seen_items, s.max_future_skew_s) == (0, 1, 0, 0)
    assert Settings(mix_text=1).mix_text == 1


def test_password_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    s = Settings()
    assert isinstance(s.redis_password, SecretStr)
    assert s.redis_password.get_secret_value() == SECRET


def test_as_dict_redacts_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    out = Settings().as_dict()
    assert out["redis_password"] == REDACTED
    assert SECRET not in json.dumps(out, default=str)
    assert set(out) == set(Settings.model_fields)


def test_as_dict_without_password_is_none() -> None:
    assert Settings().as_dict()["redis_password"] is None


def test_as_dict_is_json_serialisable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    # The CLI prints it with json.dumps(default=str); it must not need the fallback.
    assert json.loads(json.dumps(Settings().as_dict()))["redis_password"] == REDACTED


def test_repr_and_str_never_show_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    s = Settings()
    for text in (
        repr(s),
        str(s),
        f"{s}",
        repr(s.redis_password),
        str(s.redis_password),
        s.model_dump_json(),
    ):
        assert SECRET not in text
    assert "redis_password" in repr(s)


def test_as_dict_does_not_change_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    s = Settings()
    s.as_dict()
    assert s.redis_password is not None
    assert s.redis_password.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:{pw}@cache:6379/0", "redis://:**********@cache:6379/0"),
        ("redis://app:{pw}@cache:6379", "redis://app:**********@cache:6379"),
        ("rediss://app:{pw}@cache:6380/1", "rediss://app:**********@cache:6380/1"),
        ("unix://:{pw}@/run/redis.sock?db=2", "unix://:**********@/run/redis.sock?db=2"),
        ("redis://app@cache:6379", "redis://app@cache:6379"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("", ""),
    ],
)
def test_as_dict_redacts_a_password_in_the_redis_url(
    monkeypatch: pytest.MonkeyPatch, url: str, shown: str
) -> None:
    monkeypatch.setenv("LLMREC_REDIS_URL", url.format(pw=SECRET))
    s = Settings()
    assert s.as_dict()["redis_url"] == shown
    assert SECRET not in json.dumps(s.as_dict())
    assert s.redis_url == url.format(pw=SECRET)  # the worker still gets the real URL


def test_as_dict_redacts_a_url_password_holding_an_at_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_URL", "redis://app:p@ss@cache:6379")
    assert Settings().as_dict()["redis_url"] == "redis://app:**********@cache:6379"


def test_as_dict_redacts_a_password_in_the_url_query(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_URL", f"redis://cache:6379/0?password={SECRET}")
    assert SECRET not in json.dumps(Settings().as_dict())


def test_as_dict_survives_a_malformed_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_URL", "redis://[cache:6379")
    assert "redis_url" in Settings().as_dict()


def test_resolved_worker_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "box")
    assert Settings().resolved_worker_id == "box-0"
    monkeypatch.setenv("LLMREC_WORKER_ID", "w-3")
    assert Settings().resolved_worker_id == "w-3"
