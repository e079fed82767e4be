"""Seed aggregation and the paired per-user bootstrap of a metric difference (numpy only).

A lead between two models is a claim about users: each user has one target, so the natural
unit of resampling is the user. The bootstrap draws users with replacement and recomputes
``mean(a[u] - b[u])`` on the same draw for both models (paired), so what the two models share
(easy and hard users) cancels. Per-user values are first averaged over the seeds of each model,
so the interval covers the user sample; the seed spread is reported beside it as the sd.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    """``diff`` is the observed mean difference ``a - b``; ``low``/``high`` its CI bounds."""

    diff: float
    low: float
    high: float
    level: float
    resamples: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero (either sign)."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    a: npt.ArrayLike, b: npt.ArrayLike, *, resamples: int = 10_000, level: float = 0.95,
    seed: int = 0, chunk: int = 500,
) -> Interval:
    """Percentile bootstrap CI of ``mean(a - b)`` over users drawn with replacement."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1 or not len(x):
        raise ValueError(f"need two equal non-empty 1-d arrays, got {x.shape} and {y.shape}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"bad level {level} or resamples {resamples}")
    diff = x - y
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, np.float64)
    for start in range(0, resamples, chunk):  # chunks keep memory at chunk x users
        n = min(chunk, resamples - start)
        draw = rng.integers(0, len(diff), size=(n, len(diff)))
        means[start : start + n] = diff[draw].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(diff.mean()), float(low), float(high), level, resamples)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    arr = np.asarray(values, np.float64)
    if not len(arr):
        raise ValueError("no values")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def aggregate(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "sd", "n"}}`` over the seeds' metric dicts (same keys in each)."""
    if not per_seed:
        return {}
    keys = list(per_seed[0])
    if any(set(m) != set(keys) for m in per_seed):
        raise ValueError("seeds report different metrics")
    out = {}
    for k in keys:
        mean, sd = mean_sd([m[k] for m in per_seed])
        out[k] = {"mean": mean, "sd": sd, "n": float(len(per_seed))}
    return out
