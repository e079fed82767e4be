"""Deployments keep their environment: every ``LLMREC_*`` variable of the flat settings class
still sets the same setting, now inside its section (issue 18: settings by section).

``OLD`` is frozen: the 79 variables ``docs/settings.md`` listed before the tree had sections
(in that order), each with the place its value lands now. Compose files, Helm values and
operators' shells set these names; a contract test, never edited to follow the code.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr, ValidationError

from llmrec_stream.config import FLAT, SETTINGS_DOC, Settings, settings_markdown
from llmrec_stream.config.settings import section_types

ROOT = Path(__file__).resolve().parents[2]

#: flat name (LLMREC_<NAME> less the prefix) → section.field, as docs/settings.md had them
OLD: dict[str, str] = {
    "kafka_bootstrap": "kafka.bootstrap",
    "redis_url": "redis.url",
    "redis_password": "redis.password",
    "redis_username": "redis.username",
    "redis_ssl_ca_certs": "redis.ssl_ca_certs",
    "kafka_security_protocol": "kafka.security_protocol",
    "kafka_sasl_mechanism": "kafka.sasl_mechanism",
    "kafka_sasl_username": "kafka.sasl_username",
    "kafka_sasl_password": "kafka.sasl_password",
    "kafka_ssl_cafile": "kafka.ssl_cafile",
    "kafka_ssl_certfile": "kafka.ssl_certfile",
    "kafka_ssl_keyfile": "kafka.ssl_keyfile",
    "encoder_dir": "encoder.dir",
    "encoder_device": "encoder.device",
    "encoder_precision": "encoder.precision",
    "encoder_backend": "encoder.backend",
    "encoder_threads": "encoder.threads",
    "encoder_parallel_runs": "encoder.parallel_runs",
    "encoder_spinning": "encoder.spinning",
    "app_id": "stream.app_id",
    "worker_id": "stream.worker_id",
    "partitions": "stream.partitions",
    "batch_max": "stream.batch_max",
    "batch_within_s": "stream.batch_within_s",
    "batches_in_flight": "stream.batches_in_flight",
    "fetch_idle_backoff_ms": "stream.fetch_idle_backoff_ms",
    "metrics_port": "metrics.port",
    "weight_click": "fusion.click",
    "weight_purchase": "fusion.purchase",
    "weight_review": "fusion.review",
    "weight_comment_text": "fusion.comment_text",
    "half_life_s": "fusion.half_life_s",
    "mix_text": "fusion.mix_text",
    "recent_items": "profiles.recent_items",
    "seen_items": "profiles.seen_items",
    "ann_min_items": "retrieval.ann_min_items",
    "ann_connectivity": "retrieval.ann_connectivity",
    "ann_expansion_search": "retrieval.ann_expansion_search",
    "ann_max_stale": "retrieval.ann_max_stale",
    "top_k": "ranking.top_k",
    "model_dir": "models.dir",
    "model_poll_s": "models.poll_s",
    "max_text_bytes": "limits.max_text_bytes",
    "max_future_skew_s": "limits.max_future_skew_s",
    "catalog_bootstrap": "catalog.bootstrap",
    "unknown_item_wait_s": "catalog.unknown_item_wait_s",
    "log_read_timeout_s": "kafka.log_read_timeout_s",
    "dlq_value_prefix_bytes": "dlq.value_prefix_bytes",
    "dlq_send_attempts": "dlq.send_attempts",
    "max_attributes": "profiles.max_attributes",
    "explain_comments": "profiles.explain_comments",
    "explain_max_events": "ranking.explain_max_events",
    "sponsored_enabled": "sponsored.enabled",
    "sponsored_positions": "sponsored.positions",
    "sponsored_max_items": "sponsored.max_items",
    "sponsored_floor": "sponsored.floor",
    "sponsored_frequency_cap": "sponsored.frequency_cap",
    "sponsored_frequency_window_s": "sponsored.frequency_window_s",
    "sponsored_refresh_s": "sponsored.refresh_s",
    "redis_cluster": "redis.cluster",
    "api_host": "serve.host",
    "api_port": "serve.port",
    "api_token": "serve.token",
    "api_produce_timeout_s": "serve.produce_timeout_s",
    "schema_registry_url": "kafka.schema_registry_url",
    "schema_ids": "kafka.schema_ids",
    "log_format": "metrics.log_format",
    "health_check_timeout_s": "metrics.health_check_timeout_s",
    "trainer_collapse_window_ms": "trainer.collapse_window_ms",
    "social_weight": "social.weight",
    "max_follows": "social.max_follows",
    "shadow_enabled": "shadow.enabled",
    "shadow_ttl_s": "shadow.ttl_s",
    "shadow_promote_online": "shadow.promote_online",
    "shadow_min_events": "shadow.min_events",
    "shadow_confidence": "shadow.confidence",
    "text_signals": "text.signals",
    # added to the flat class by the aspect ranking (issue 14 item 5) just before the split
    "aspect_rank_weight": "text.aspect_rank_weight",
    "aspect_rank_pool": "text.aspect_rank_pool",
}

#: raw values a type cannot pick for itself (a pattern to match)
RAW = {"sponsored_positions": ("2,5", "2,5")}


# no LLMREC_* variable of the developer's shell leaks into these tests
pytestmark = pytest.mark.usefixtures("clean_llmrec_env")


def value(settings: Settings, path: str) -> Any:
    section, name = path.split(".")
    got = getattr(getattr(settings, section), name)
    return got.get_secret_value() if isinstance(got, SecretStr) else got


def sample(flat_name: str) -> tuple[str, Any]:
    """(a raw environment value, the value it parses to), never the field's default."""
    if flat_name in RAW:
        return RAW[flat_name]
    section, name = FLAT[flat_name]
    field = section_types()[section].model_fields[name]
    tp, default = field.annotation, field.default
    if typing.get_origin(tp) is Literal:
        pick = next(a for a in typing.get_args(tp) if a != default)
        return pick, pick
    if tp is bool:
        return ("false", False) if default else ("true", True)
    if tp is int:
        return str(default + 1), default + 1
    if tp is float:
        return (str(default / 2), default / 2) if default else ("1.5", 1.5)
    if tp is str:
        return "x-1", "x-1"
    if tp == SecretStr | None:
        return "s3cret-x", "s3cret-x"
    if tp == dict[str, int]:
        return '{"llmrec.clicks": 3}', {"llmrec.clicks": 3}
    raise AssertionError(f"no sample for {flat_name}: {tp}")


def changed(a: Settings, b: Settings) -> list[str]:
    """The flat names of the settings whose values differ."""
    paths = {flat_name: ".".join(where) for flat_name, where in FLAT.items()}
    return [flat_name for flat_name, p in paths.items() if value(a, p) != value(b, p)]


def documented() -> dict[str, str]:
    """variable → setting path, read from the generated docs on disk."""
    text = (ROOT / SETTINGS_DOC).read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `(LLMREC_\w+)` \| `(\w+\.\w+)` \|", text, re.MULTILINE))


def test_every_old_variable_is_still_documented_for_the_same_setting() -> None:
    rows = documented()
    assert {f"LLMREC_{n.upper()}": p for n, p in OLD.items()}.items() <= rows.items()
    assert (ROOT / SETTINGS_DOC).read_text(encoding="utf-8") == settings_markdown()


@pytest.mark.parametrize("flat_name", list(OLD))
def test_each_old_variable_sets_its_setting_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, flat_name: str
) -> None:
    raw, want = sample(flat_name)
    base = Settings()
    monkeypatch.setenv(f"LLMREC_{flat_name.upper()}", raw)
    got = Settings()
    assert value(got, OLD[flat_name]) == want
    assert changed(base, got) == [flat_name]


@pytest.mark.parametrize("flat_name", list(OLD))
def test_each_old_name_is_a_keyword_for_the_same_setting(flat_name: str) -> None:
    raw, want = sample(flat_name)
    got = Settings(**{flat_name: want})  # keywords take values, not their raw text
    assert value(got, OLD[flat_name]) == want
    assert changed(Settings(), got) == [flat_name]


def test_every_documented_variable_sets_the_documented_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # settings added after the split are held to the same promise
    rows = documented()
    assert set(rows) == {f"LLMREC_{n.upper()}" for n in FLAT}
    for variable, path in rows.items():
        flat_name = variable.removeprefix("LLMREC_").lower()
        raw, want = sample(flat_name)
        monkeypatch.setenv(variable, raw)
        assert value(Settings(), path) == want, variable
        monkeypatch.delenv(variable)


def test_variables_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("llmrec_weight_click", "2.5")
    monkeypatch.setenv("Llmrec_Kafka_Bootstrap", "b:9092")
    s = Settings()
    assert (s.fusion.click, s.kafka.bootstrap) == (2.5, "b:9092")


def test_a_bad_value_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_WEIGHT_CLICK", "heavy")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [("weight_click",)]
