"""Confidence intervals of online hit rates: one model's, and a shadow's lead over the live one.

The runtime install has no statistics package (scipy lives in the ``eval`` extra), and the
promotion policy runs in the worker, so the two closed-form score intervals are written here
with the standard library's normal quantile; a unit test checks the Wilson interval against
scipy's. Both models are scored on the same events (paired), so their difference gets
Newcombe's interval for paired proportions (method 10, Newcombe 1998, *Statistics in
Medicine* 17:2635), which uses the correlation of the pairs: what both models hit or both
miss does not widen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``hits / n``; (0, 1) when there is no event."""
    if hits < 0 or n < 0 or hits > n:
        raise ValueError(f"need 0 <= hits <= n, got {hits} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(level)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class PairedHits:
    """Hits of two models on the same ``events``: ``both`` is how many both models hit."""

    events: int
    live: int
    shadow: int
    both: int

    def __post_init__(self) -> None:
        if not 0 <= self.both <= min(self.live, self.shadow) or max(self.live, self.shadow) > \
                self.events or self.live + self.shadow - self.both > self.events:
            raise ValueError(f"inconsistent paired counts {self}")

    @property
    def live_rate(self) -> float:
        return self.live / self.events if self.events else 0.0

    @property
    def shadow_rate(self) -> float:
        return self.shadow / self.events if self.events else 0.0


def paired_difference(c: PairedHits, level: float = 0.95) -> tuple[float, float, float]:
    """(shadow rate − live rate, low, high): Newcombe's hybrid score interval for paired
    proportions. With no event the difference is 0 and the interval (−1, 1)."""
    n = c.events
    if n == 0:
        return 0.0, -1.0, 1.0
    p1, p2 = c.shadow / n, c.live / n
    l1, u1 = wilson(c.shadow, n, level)
    l2, u2 = wilson(c.live, n, level)
    # the 2x2 table of the pairs: a both hit, b shadow only, cc live only, d neither
    a, b, cc = c.both, c.shadow - c.both, c.live - c.both
    d = n - a - b - cc
    denominator = (a + b) * (cc + d) * (a + cc) * (b + d)
    phi = (a * d - b * cc) / math.sqrt(denominator) if denominator else 0.0
    delta = p1 - p2
    low = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return delta, max(-1.0, delta - low), min(1.0, delta + high)
