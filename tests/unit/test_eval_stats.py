"""The bootstrap interval and the seed aggregation, against cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec_stream.eval.stats import aggregate, mean_sd, paired_bootstrap


def test_a_known_difference_is_covered_and_significant() -> None:
    rng = np.random.default_rng(1)
    b = rng.random(4000)
    a = b + 0.05 + rng.normal(0, 0.1, 4000)  # true mean difference 0.05
    ci = paired_bootstrap(a, b, resamples=2000)
    assert ci.low < 0.05 < ci.high
    assert ci.low > 0 and ci.significant
    assert ci.diff == pytest.approx(float(np.mean(a - b)))
    # the pairing matters: the per-user noise shared by a and b cancels, so the paired
    # interval is far narrower than the spread of either model's values would allow
    assert ci.high - ci.low < 0.02


def test_identical_models_give_an_interval_around_zero() -> None:
    rng = np.random.default_rng(2)
    a = (rng.random(3000) < 0.1).astype(float) / np.log2(rng.integers(2, 12, 3000))
    ci = paired_bootstrap(a, a.copy(), resamples=500)
    assert ci.diff == 0.0 and ci.low == 0.0 and ci.high == 0.0 and not ci.significant
    # two models of equal quality, different per-user hits: the interval straddles zero
    b = np.roll(a, 1)
    ci = paired_bootstrap(a, b, resamples=2000)
    assert ci.low < 0 < ci.high and not ci.significant


def test_bootstrap_is_reproducible_and_refuses_bad_input() -> None:
    a, b = np.arange(10.0), np.zeros(10)
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    with pytest.raises(ValueError):
        paired_bootstrap(a, b[:5])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])


def test_seed_aggregation_is_mean_and_sample_sd() -> None:
    runs = [{"ndcg@10": 0.1, "recall@10": 0.2}, {"ndcg@10": 0.2, "recall@10": 0.2},
            {"ndcg@10": 0.3, "recall@10": 0.2}]
    agg = aggregate(runs)
    assert agg["ndcg@10"]["mean"] == pytest.approx(0.2)
    assert agg["ndcg@10"]["sd"] == pytest.approx(0.1)  # ddof 1: sqrt(0.02 / 2)
    assert agg["recall@10"]["sd"] == pytest.approx(0.0, abs=1e-12) and agg["ndcg@10"]["n"] == 3
    assert mean_sd([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="different metrics"):
        aggregate([{"a": 1.0}, {"b": 1.0}])
