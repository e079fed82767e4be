"""The alert rules of deploy/alerts.yml, unit-tested by Prometheus' own ``promtool``.

``promtool test rules`` evaluates the rules over the synthetic series of deploy/alerts.test.yml
exactly as Prometheus would (same engine, same ``for`` handling, same templates). Debian's
``prometheus`` package ships it (.ci/run installs it); without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "alerts.yml"
RULE_TESTS = DEPLOY / "alerts.test.yml"
#: ``<query> <comparison> <threshold>``, the form every rule keeps (see deploy/alerts.yml)
COMPARISON = re.compile(r"^(?P<query>.+?)\s+(?P<op>>=|<=|==|!=|>|<)\s+(?P<threshold>[0-9.]+)$")

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; .ci/run does)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _alerts(path: Path = RULES) -> list[dict[str, str]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_and_the_prometheus_config_check() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = _promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 5 rules found" in config.stdout + config.stderr


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_keeps_the_comparison_form() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {case["alertname"] for t in tests for case in t["alert_rule_test"]
              if case["exp_alerts"]}
    names = [rule["alert"] for rule in _alerts()]
    assert names == ["LlmrecFreshnessP99High", "LlmrecConsumerLagGrowing", "LlmrecDeadLetters",
                     "LlmrecWorkerDown", "LlmrecRedisRetries"]
    assert set(names) <= firing
    for rule in _alerts():
        assert COMPARISON.match(rule["expr"].strip()), rule["expr"]


@pytest.mark.parametrize("alert", [
    "LlmrecFreshnessP99High", "LlmrecConsumerLagGrowing", "LlmrecDeadLetters",
    "LlmrecWorkerDown", "LlmrecRedisRetries",
])
def test_the_unit_tests_catch_a_wrong_threshold(alert: str, tmp_path: Path) -> None:
    """Moving one alert's threshold makes ``promtool test rules`` fail: the tests pin it."""
    text = RULES.read_text()
    rule = next(r for r in _alerts() if r["alert"] == alert)
    m = COMPARISON.match(rule["expr"].strip())
    assert m is not None
    wrong = "1e9" if m["op"] in (">", ">=") else ("-1" if m["op"] in ("<", "<=") else "7")
    moved = f"{m['query']} {m['op']} {wrong}"
    assert text.count(rule["expr"].strip()) == 1
    (tmp_path / "alerts.yml").write_text(text.replace(rule["expr"].strip(), moved))
    shutil.copy(RULE_TESTS, tmp_path / "alerts.test.yml")
    result = _promtool("test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode != 0, result.stdout
    assert alert in result.stdout + result.stderr
