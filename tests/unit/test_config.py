"""The settings tree: defaults, ``LLMREC_*`` overrides, validation, and no leaked secrets."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr, ValidationError

from llmrec_stream.config import FLAT, Settings
from llmrec_stream.config.settings import section_types

SECRET = "hunter2-s3cr3t"  # noqa: S105 - a test value
REDACTED = "**********"


# no LLMREC_* variable of the developer's shell leaks into these tests
pytestmark = pytest.mark.usefixtures("clean_llmrec_env")


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


def flat_value(settings: Settings, flat_name: str) -> object:
    section, name = FLAT[flat_name]
    return getattr(getattr(settings, section), name)


def test_defaults() -> None:
    out = Settings().as_dict()
    assert set(out) == set(FLAT)
    assert {name: out[name] for name in DEFAULTS} == DEFAULTS


def test_every_setting_is_documented() -> None:
    # The docs table is generated from these descriptions.
    for section, cls in section_types().items():
        assert cls.__doc__, section
        for name, field in cls.model_fields.items():
            assert field.description, f"{section}.{name}"


def test_the_library_weights_and_limits_are_the_sections() -> None:
    # one definition each: the profile maths and the codec take the configured sections
    from llmrec_stream.config import FusionWeights as ConfiguredWeights
    from llmrec_stream.config import Limits as ConfiguredLimits
    from llmrec_stream.events.codec import Limits
    from llmrec_stream.profiles.fusion import FusionWeights

    assert FusionWeights is ConfiguredWeights and Limits is ConfiguredLimits
    s = Settings(weight_click=0.5, max_text_bytes=10)
    assert s.fusion == FusionWeights(click=0.5) and s.limits == Limits(max_text_bytes=10)
    assert Settings().fusion == FusionWeights() and Settings().limits == Limits()


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
    assert flat_value(Settings(), name) == expected


def test_every_setting_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # (tests/unit/test_settings_env.py holds every variable to the setting it always set)
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
    types = section_types()
    for name, (section, field_name) in FLAT.items():
        if name in secrets:
            continue
        field = types[section].model_fields[field_name]
        default = field.get_default(call_default_factory=True)
        raw, expected[name] = literals.get(name) or samples[type(default)]
        monkeypatch.setenv(f"LLMREC_{name.upper()}", raw)
    s = Settings()
    for name, want in expected.items():
        assert flat_value(s, name) == want, name


def test_unrelated_env_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_NOT_A_SETTING", "1")
    monkeypatch.setenv("TOP_K", "3")
    assert Settings().ranking.top_k == 20


def test_constructor_arguments_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_TOP_K", "7")
    assert Settings(top_k=3).ranking.top_k == 3


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
    assert (s.fusion.mix_text, s.ranking.top_k, s.profiles.seen_items,
            s.limits.max_future_skew_s) == (0, 1, 0, 0)
    assert Settings(mix_text=1).fusion.mix_text == 1


def test_password_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    s = Settings()
    assert isinstance(s.redis.password, SecretStr)
    assert s.redis.password.get_secret_value() == SECRET


def test_as_dict_redacts_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    out = Settings().as_dict()
    assert out["redis_password"] == REDACTED
    assert SECRET not in json.dumps(out, default=str)
    assert set(out) == set(FLAT)


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
        repr(s.redis.password),
        str(s.redis.password),
        s.model_dump_json(),
    ):
        assert SECRET not in text
    assert f"password=SecretStr('{REDACTED}')" in repr(s)


def test_as_dict_does_not_change_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_REDIS_PASSWORD", SECRET)
    s = Settings()
    s.as_dict()
    assert s.redis.password is not None
    assert s.redis.password.get_secret_value() == SECRET


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
    assert s.redis.url == url.format(pw=SECRET)  # the worker still gets the real URL


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
    assert Settings().stream.resolved_worker_id == "box-0"
    monkeypatch.setenv("LLMREC_WORKER_ID", "w-3")
    assert Settings().stream.resolved_worker_id == "w-3"


def test_flat_keywords_route_to_their_sections() -> None:
    s = Settings(kafka_bootstrap="b:9092", weight_click=0.5, api_port=9000, text_signals=True)
    assert (s.kafka.bootstrap, s.fusion.click, s.serve.port, s.text.signals) == (
        "b:9092", 0.5, 9000, True)


@pytest.mark.parametrize("key", ["kafka_bootstrapp", "bootstrap", "click", "not_a_setting"])
def test_an_unknown_keyword_is_an_error(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{key: "1"})
    assert [e["loc"] for e in info.value.errors()] == [(key,)]
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_an_unknown_key_inside_a_section_is_an_error() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(kafka={"bootstrapp": "b:9092"})
    assert [e["loc"] for e in info.value.errors()] == [("kafka", "bootstrapp")]


def test_a_section_keyword_keeps_the_environment_of_its_other_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMREC_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("LLMREC_REDIS_CLUSTER", "false")
    s = Settings(redis={"cluster": True})
    assert (s.redis.url, s.redis.cluster) == ("redis://cache:6379/0", True)


def test_a_flat_keyword_wins_over_the_environment_and_joins_a_given_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llmrec_stream.config import RedisSettings

    monkeypatch.setenv("LLMREC_REDIS_URL", "redis://env:6379/0")
    s = Settings(redis=RedisSettings(cluster=True), redis_url="redis://kw:6379/0")
    assert (s.redis.url, s.redis.cluster) == ("redis://kw:6379/0", True)


def test_one_setting_given_twice_is_an_error() -> None:
    with pytest.raises(TypeError, match="redis_url= and redis.url"):
        Settings(redis={"url": "redis://a:1"}, redis_url="redis://b:1")


def test_the_settings_tree_imports_nothing_else_of_the_library() -> None:
    # every folder takes its section from here, so config must sit below all of them
    import ast
    from pathlib import Path

    import llmrec_stream.config as package

    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                inside = name == "llmrec_stream.config" or name.startswith("llmrec_stream.config.")
                assert inside or not name.startswith("llmrec_stream"), (path.name, name)
