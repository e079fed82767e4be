"""Retrieval benchmark: exact top-k (`ExactIndex`, one BLAS product) against `AnnIndex` (HNSW).

Both indexes are driven through the `ItemIndex` methods the stream worker calls, one user per
`search` call, so the latencies include the id bookkeeping and not just the kernel. Recall@k
of the ANN index is measured against the exact index's answers on the same queries. Each
catalog size is built, measured and freed before the next, so a 1M run needs memory for one
catalog at a time (about 3 x 1.5 GB: the vectors, the exact matrix, the graph's copy).

Churn (issue 17): a live catalog is not a fresh graph. After the fresh figures, the same graph
gets replaced items (new vectors under the same ids: faiss's HNSW keeps the old rows as
tombstones, filtered by a bitmap during the search) up to each share of ``churn`` of the
catalog, 10 % then 25 % by default, the last state a worker serves before it rebuilds the
graph (``ann_max_stale`` = 0.25; the bench holds off that rebuild so the graph carries the
tombstones it measures). Each state is measured plainly and with ``seen`` items excluded per
user (`ItemIndex.search`'s ``exclude``: the purchases a user is not shown again; the ANN index
over-fetches for them), half drawn from the user's own exact top-k (the items near a user's
taste are the ones they bought) and half from the whole catalog. Recall is always against
the exact index on the same live vectors with the same exclusions.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmrec_stream.bench.retrieval_states import (
    CHUNK,
    AnnPoint,
    ChurnPoint,
    LatencyStats,
    ann_point,
    blas_threads,
    churn_states,
    timed_searches,
)
from llmrec_stream.bench.vectors import DEFAULT_DIM, clustered_vectors
from llmrec_stream.retrieval.exact import ExactIndex

DEFAULT_SIZES: tuple[int, ...] = (10_000, 100_000, 1_000_000)
DEFAULT_EXPANSIONS: tuple[int, ...] = (128, 256, 512)
#: Shares of the catalog replaced (tombstones in the graph), measured in this order.
DEFAULT_CHURN: tuple[float, ...] = (0.10, 0.25)
#: Items excluded per user in the "+ seen" states (0: none).
DEFAULT_SEEN = 50
#: The issue's target at 1M items.
TARGET_P99_MS = 10.0
TARGET_RECALL = 0.95


@dataclass(frozen=True, slots=True)
class SizeResult:
    """Everything measured on one catalog size."""

    items: int
    queries: int
    k: int
    exact_build_s: float
    exact_memory_bytes: int
    exact_latency: LatencyStats
    ann_build_s: float
    ann_memory_bytes: int
    ann_rss_delta_bytes: int
    ann: list[AnnPoint] = field(default_factory=list)
    churn: list[ChurnPoint] = field(default_factory=list)

    def best(self, recall: float = TARGET_RECALL) -> AnnPoint | None:
        """The fastest (p99) ANN point reaching `recall`, if any."""
        ok = [p for p in self.ann if p.recall >= recall]
        return min(ok, key=lambda p: p.latency.p99_ms) if ok else None


def bench_retrieval(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    dim: int = DEFAULT_DIM,
    queries: int = 200,
    k: int = 100,
    expansions: Sequence[int] = DEFAULT_EXPANSIONS,
    connectivity: int | None = None,
    expansion_add: int | None = None,
    threads: int | None = None,
    search_threads: int = 1,
    seed: int = 0,
    churn: Sequence[float] = DEFAULT_CHURN,
    seen: int = DEFAULT_SEEN,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[SizeResult]:
    """Measure exact and ANN retrieval on clustered catalogs of each size in `sizes`.

    `threads` parallelises the graph build only (default: every usable core). Searches are
    one query per call, as a worker serves one user at a time, and both indexes get
    `search_threads` cores for it (BLAS threads for the exact one): on a shared machine a
    multi-threaded BLAS call waits for its slowest thread's time slice, which would measure
    the neighbours rather than the index.
    """
    from llmrec_stream.retrieval.ann import AnnIndex

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    ann_kwargs: dict[str, Any] = {"threads": threads}
    if connectivity is not None:
        ann_kwargs["connectivity"] = connectivity
    if expansion_add is not None:
        ann_kwargs["expansion_add"] = expansion_add
    churn = sorted(churn)
    if churn and not (0 < churn[0] and churn[-1] < 1):
        raise ValueError(f"churn shares must be in (0, 1), got {churn}")
    if churn:  # no rebuild before the largest share: the graph keeps the tombstones measured
        ann_kwargs["max_stale"] = max(churn) + 0.01
    results: list[SizeResult] = []
    for n in sizes:
        items, centers = clustered_vectors(n, dim, seed=seed)
        users, _ = clustered_vectors(queries, dim, centers=centers, seed=seed + 1)
        ids = [f"item{j}" for j in range(n)]
        log(f"[{n:,} items] exact index: build")
        exact = ExactIndex(dim, capacity=n)
        started = time.perf_counter()
        for lo in range(0, n, CHUNK):
            exact.upsert(ids[lo : lo + CHUNK], items[lo : lo + CHUNK])
        exact_build = time.perf_counter() - started
        exact_memory = exact._matrix.nbytes  # noqa: SLF001 - the matrix is the index's memory
        log(f"[{n:,} items] exact index: {queries} single-user searches")
        with blas_threads(search_threads):
            truth, exact_times = timed_searches(exact.search, users, k)
        if not churn and not seen:
            del exact
            gc.collect()

        log(f"[{n:,} items] ANN index: build on {threads} thread(s)")
        rss_before = _rss_bytes()
        ann = AnnIndex(dim, **ann_kwargs)
        started = time.perf_counter()
        for lo in range(0, n, CHUNK):
            ann.upsert(ids[lo : lo + CHUNK], items[lo : lo + CHUNK])
        ann_build = time.perf_counter() - started
        rss_delta = _rss_bytes() - rss_before
        points = [ann_point(ann, ef, users, k, truth, log) for ef in expansions]
        states: list[ChurnPoint] = []
        if churn or seen:
            states = churn_states(
                exact, ann, items, ids, centers, users, truth,
                churn=churn, seen=seen, k=k, expansions=expansions,
                search_threads=search_threads, seed=seed, log=log,
            )
            del exact
        results.append(
            SizeResult(
                items=n,
                queries=queries,
                k=k,
                exact_build_s=exact_build,
                exact_memory_bytes=int(exact_memory),
                exact_latency=LatencyStats.of(exact_times),
                ann_build_s=ann_build,
                ann_memory_bytes=ann.memory_bytes,
                ann_rss_delta_bytes=rss_delta,
                ann=points,
                churn=states,
            )
        )
        del ann, items, users, ids, truth
        gc.collect()
    return results


def _rss_bytes() -> int:
    """Resident set size from /proc (Linux); 0 where that is not available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")
