"""Online hit-rate intervals and the online promotion rule (issue 14, item 4: shadow models)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from llmrec_stream.ranking.online_stats import PairedHits, paired_difference, wilson
from llmrec_stream.ranking.registry import Decision, ModelRecord
from llmrec_stream.ranking.shadow import OnlineRule

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "model_update.json")
                    .read_text(encoding="utf-8"))


@pytest.mark.parametrize(("hits", "n"), [(0, 10), (7, 40), (40, 40), (123, 1000), (1, 3)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(hits: int, n: int, level: float) -> None:
    stats = pytest.importorskip("scipy.stats", reason="the reference is in the `eval` extra")
    expected = stats.binomtest(hits, n).proportion_ci(level, method="wilson")
    low, high = wilson(hits, n, level)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_refuses_impossible_counts_and_knows_nothing_without_events() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    for hits, n in ((5, 4), (-1, 4)):
        with pytest.raises(ValueError):
            wilson(hits, n)
    with pytest.raises(ValueError):
        wilson(1, 2, level=1.0)


def test_paired_counts_must_be_a_2x2_table() -> None:
    with pytest.raises(ValueError):
        PairedHits(events=10, live=6, shadow=6, both=1)  # 11 events hit by one or the other
    with pytest.raises(ValueError):
        PairedHits(events=10, live=2, shadow=6, both=3)  # both above what live hit


def test_the_paired_interval_holds_its_level_on_correlated_pairs() -> None:
    """Coverage by simulation: two models hit the same events more often than chance (they
    share easy users), as a live and a shadow model do. Newcombe's interval must cover the
    true difference about 95 % of the time, and be narrower than two independent Wilson
    intervals would allow (that is what pairing buys)."""
    rng = random.Random(14)
    p_shadow, p_live, p_both = 0.45, 0.30, 0.25  # P(shadow hit), P(live hit), P(both)
    truth = p_shadow - p_live
    cells = [p_both, p_shadow - p_both, p_live - p_both]  # both, shadow only, live only
    covered, runs, n = 0, 2000, 150
    widths = []
    for _ in range(runs):
        both = shadow_only = live_only = 0
        for _ in range(n):
            u = rng.random()
            if u < cells[0]:
                both += 1
            elif u < cells[0] + cells[1]:
                shadow_only += 1
            elif u < sum(cells):
                live_only += 1
        hits = PairedHits(n, both + live_only, both + shadow_only, both)
        diff, low, high = paired_difference(hits)
        assert low <= diff <= high
        covered += low <= truth <= high
        widths.append(high - low)
    assert 0.93 <= covered / runs <= 0.97, covered / runs
    unpaired = wilson(int(p_shadow * n), n)[1] - wilson(int(p_shadow * n), n)[0] + \
        wilson(int(p_live * n), n)[1] - wilson(int(p_live * n), n)[0]
    assert sum(widths) / runs < 0.9 * unpaired


def test_the_difference_interval_on_extreme_tables() -> None:
    assert paired_difference(PairedHits(0, 0, 0, 0)) == (0.0, -1.0, 1.0)
    diff, low, high = paired_difference(PairedHits(100, 0, 100, 0))  # shadow always, live never
    assert diff == 1.0 and 0.9 < low <= high == 1.0
    diff, low, high = paired_difference(PairedHits(100, 40, 40, 40))  # identical hits
    assert diff == 0.0 and low < 0 < high


def test_the_online_rule_needs_enough_events_and_a_lower_bound_above_zero() -> None:
    rule = OnlineRule(min_events=100, level=0.95)
    assert rule.verdict(None) == (False, "0 paired events online, 100 needed")
    won, why = rule.verdict(PairedHits(99, 0, 99, 0))
    assert not won and "99 paired events" in why
    won, why = rule.verdict(PairedHits(200, 40, 90, 30))
    assert won, why
    assert "0.4500 vs live 0.2000 on 200 events" in why
    won, _ = rule.verdict(PairedHits(200, 40, 46, 30))  # ahead, but within the noise
    assert not won
    won, _ = rule.verdict(PairedHits(200, 90, 40, 30))  # worse
    assert not won


def test_a_shadow_record_is_valid_and_a_live_record_is_unchanged_on_the_wire() -> None:
    base = ModelRecord("v1", "0" * 64, "/models/v1", {"valid_ndcg@10": 0.3}, 1)
    shadow = ModelRecord(**{**base.__dict__, "shadow": True})
    validate = Draft7Validator(SCHEMA)
    for record in (base, shadow):
        assert not list(validate.iter_errors(json.loads(record.dumps())))
        assert ModelRecord.parse(record.dumps()) == record
    # a live record carries no "shadow" field: workers that predate shadows still read it
    assert "shadow" not in json.loads(base.dumps())
    assert json.loads(shadow.dumps())["shadow"] is True


def test_policy_verdicts_are_not_dead_letters() -> None:
    for reason in ("promoted", "not_better", "not_better_online", "shadowed"):
        assert not Decision(reason == "promoted", reason).dead_letter
    for reason in ("invalid_record", "checksum_mismatch", "unreadable", "shadow_off"):
        assert Decision(False, reason).dead_letter
