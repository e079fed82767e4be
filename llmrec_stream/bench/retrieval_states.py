"""Timed searches of a built index and the states of a churned catalog (`bench.retrieval`):
single-user searches with their latency, recall against the exact answers, items replaced
under the same ids (tombstones in the graph), seen items excluded per user.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmrec_stream.bench.vectors import clustered_vectors
from llmrec_stream.retrieval.exact import ExactIndex

if TYPE_CHECKING:
    from llmrec_stream.retrieval.ann import AnnIndex

#: Rows per upsert call: bounds the temporary copies of a large catalog's inserts.
CHUNK = 100_000


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Per-query wall time of single-user searches, in milliseconds."""

    p50_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean()))


@dataclass(frozen=True, slots=True)
class AnnPoint:
    """The ANN index at one search expansion ("ef")."""

    expansion_search: int
    latency: LatencyStats
    recall: float
    recall_min: float


@dataclass(frozen=True, slots=True)
class ChurnPoint:
    """Both indexes on one state of a churned catalog (``replaced`` share, ``seen`` excluded)."""

    scenario: str
    replaced: float
    tombstones: int
    seen: int
    exact_latency: LatencyStats
    ann: list[AnnPoint]


def seen_sets(
    truth: Sequence[Sequence[tuple[str, float]]], ids: Sequence[str], seen: int, seed: int
) -> list[frozenset[str]]:
    """Per user, ``seen`` distinct ids: half from the user's exact top-k, the rest anywhere."""
    rng = np.random.default_rng(seed)
    out: list[frozenset[str]] = []
    for hits in truth:
        near = [i for i, _ in hits]
        take = min(len(near), seen // 2)
        chosen = {near[j] for j in rng.choice(len(near), size=take, replace=False)}
        while len(chosen) < min(seen, len(ids)):
            chosen.add(ids[int(rng.integers(len(ids)))])
        out.append(frozenset(chosen))
    return out


def replace_items(
    exact: ExactIndex,
    ann: AnnIndex,
    items: npt.NDArray[np.float32],
    ids: Sequence[str],
    lo: int,
    hi: int,
    centers: npt.NDArray[np.float32],
    seed: int,
) -> None:
    """Items ``lo:hi`` get new vectors (same topics) in both indexes and in ``items``."""
    fresh, _ = clustered_vectors(hi - lo, items.shape[1], centers=centers, seed=seed)
    items[lo:hi] = fresh
    for at in range(lo, hi, CHUNK):
        end = min(hi, at + CHUNK)
        exact.upsert(ids[at:end], items[at:end])
        ann.upsert(ids[at:end], items[at:end])


def churn_states(
    exact: ExactIndex,
    ann: AnnIndex,
    items: npt.NDArray[np.float32],
    ids: list[str],
    centers: npt.NDArray[np.float32],
    users: npt.NDArray[np.float32],
    truth: list[list[tuple[str, float]]],
    *,
    churn: Sequence[float],
    seen: int,
    k: int,
    expansions: Sequence[int],
    search_threads: int,
    seed: int,
    log: Callable[[str], None],
) -> list[ChurnPoint]:
    n = len(ids)
    excluded = seen_sets(truth, ids, seen, seed + 3) if seen else None
    states: list[ChurnPoint] = []
    done = 0
    for share in (0.0, *churn):
        if share:
            upto = round(share * n)
            log(f"[{n:,} items] replacing items {done:,}..{upto:,} ({share:.0%} of the catalog)")
            replace_items(exact, ann, items, ids, done, upto, centers, seed + 10 + done)
            done = upto
        # the fresh graph without exclusions is the main figures already
        variants = ([None] if share else []) + ([excluded] if excluded is not None else [])
        for ex in variants:
            name = f"{share:.0%} replaced" if share else "fresh"
            name += f" + {seen} seen" if ex is not None else ""
            log(f"[{n:,} items] {name}: exact and ANN searches")
            with blas_threads(search_threads):
                want, times = timed_searches(exact.search, users, k, ex)
            points = [ann_point(ann, ef, users, k, want, log, ex) for ef in expansions]
            states.append(ChurnPoint(name, share, ann.tombstones, seen if ex else 0,
                                     LatencyStats.of(times), points))
    return states


def ann_point(
    ann: AnnIndex,
    ef: int,
    users: npt.NDArray[np.float32],
    k: int,
    truth: list[list[tuple[str, float]]],
    log: Callable[[str], None],
    exclude: Sequence[frozenset[str]] | None = None,
) -> AnnPoint:
    ann.expansion_search = ef
    log(f"[{len(ann):,} items] ANN index: ef={ef}, {len(users)} single-user searches")
    got, times = timed_searches(ann.search, users, k, exclude)
    recalls = [
        len({i for i, _ in g} & {i for i, _ in t}) / max(1, len(t))
        for g, t in zip(got, truth, strict=True)
    ]
    return AnnPoint(ef, LatencyStats.of(times), float(np.mean(recalls)), float(np.min(recalls)))


def timed_searches(
    search: Callable[..., list[list[tuple[str, float]]]],
    users: npt.NDArray[np.float32],
    k: int,
    exclude: Sequence[frozenset[str]] | None = None,
) -> tuple[list[list[tuple[str, float]]], list[float]]:
    search(users[:1], k)  # first call pays lazy set-up (page faults, thread pools)
    out: list[list[tuple[str, float]]] = []
    times: list[float] = []
    for row in range(len(users)):
        skip = () if exclude is None else (exclude[row],)
        started = time.perf_counter()
        (hits,) = search(users[row : row + 1], k, skip)
        times.append(time.perf_counter() - started)
        out.append(hits)
    return out, times


def blas_threads(n: int) -> AbstractContextManager[object]:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # then BLAS keeps its own default
        return nullcontext()
    return threadpool_limits(limits=n, user_api="blas")
