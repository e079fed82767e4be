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
import math
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.bench.report import format_table
from llmrec_stream.bench.vectors import DEFAULT_DIM, clustered_vectors
from llmrec_stream.retrieval.exact import ExactIndex

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from llmrec_stream.retrieval.ann import AnnIndex

DEFAULT_SIZES: tuple[int, ...] = (10_000, 100_000, 1_000_000)
DEFAULT_EXPANSIONS: tuple[int, ...] = (128, 256, 512)
#: Shares of the catalog replaced (tombstones in the graph), measured in this order.
DEFAULT_CHURN: tuple[float, ...] = (0.10, 0.25)
#: Items excluded per user in the "+ seen" states (0: none).
DEFAULT_SEEN = 50
#: The issue's target at 1M items.
TARGET_P99_MS = 10.0
TARGET_RECALL = 0.95
_CHUNK = 100_000


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
        for lo in range(0, n, _CHUNK):
            exact.upsert(ids[lo : lo + _CHUNK], items[lo : lo + _CHUNK])
        exact_build = time.perf_counter() - started
        exact_memory = exact._matrix.nbytes  # noqa: SLF001 - the matrix is the index's memory
        log(f"[{n:,} items] exact index: {queries} single-user searches")
        with _blas_threads(search_threads):
            truth, exact_times = _timed_searches(exact.search, users, k)
        if not churn and not seen:
            del exact
            gc.collect()

        log(f"[{n:,} items] ANN index: build on {threads} thread(s)")
        rss_before = _rss_bytes()
        ann = AnnIndex(dim, **ann_kwargs)
        started = time.perf_counter()
        for lo in range(0, n, _CHUNK):
            ann.upsert(ids[lo : lo + _CHUNK], items[lo : lo + _CHUNK])
        ann_build = time.perf_counter() - started
        rss_delta = _rss_bytes() - rss_before
        points = [_ann_point(ann, ef, users, k, truth, log) for ef in expansions]
        states: list[ChurnPoint] = []
        if churn or seen:
            states = _churn_states(
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
    for at in range(lo, hi, _CHUNK):
        end = min(hi, at + _CHUNK)
        exact.upsert(ids[at:end], items[at:end])
        ann.upsert(ids[at:end], items[at:end])


def _churn_states(
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
            with _blas_threads(search_threads):
                want, times = _timed_searches(exact.search, users, k, ex)
            points = [_ann_point(ann, ef, users, k, want, log, ex) for ef in expansions]
            states.append(ChurnPoint(name, share, ann.tombstones, seen if ex else 0,
                                     LatencyStats.of(times), points))
    return states


def _ann_point(
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
    got, times = _timed_searches(ann.search, users, k, exclude)
    recalls = [
        len({i for i, _ in g} & {i for i, _ in t}) / max(1, len(t))
        for g, t in zip(got, truth, strict=True)
    ]
    return AnnPoint(ef, LatencyStats.of(times), float(np.mean(recalls)), float(np.min(recalls)))


def _timed_searches(
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


def _blas_threads(n: int) -> AbstractContextManager[object]:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # then BLAS keeps its own default
        return nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _rss_bytes() -> int:
    """Resident set size from /proc (Linux); 0 where that is not available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def retrieval_payload(results: Sequence[SizeResult]) -> dict[str, Any]:
    """The JSON body: every figure, plus the verdict on the 1M target where 1M was run."""
    verdict: dict[str, Any] = {"p99_ms_max": TARGET_P99_MS, "recall_min": TARGET_RECALL}
    for r in results:
        if r.items >= 1_000_000:
            best = r.best()
            verdict["items"] = r.items
            verdict["met"] = best is not None and best.latency.p99_ms <= TARGET_P99_MS
            verdict["best"] = asdict(best) if best else None
    return {"results": [asdict(r) for r in results], "target": verdict}


def retrieval_table(results: Sequence[SizeResult]) -> str:
    headers = [
        "items", "catalog", "index", "ef", "p50 ms", "p99 ms", f"recall@{_k(results)}",
        "build s", "MB",
    ]
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [
                r.items,
                "fresh",
                "exact",
                "-",
                r.exact_latency.p50_ms,
                r.exact_latency.p99_ms,
                1.0,
                r.exact_build_s,
                r.exact_memory_bytes / 2**20,
            ]
        )
        for p in r.ann:
            rows.append(
                [
                    r.items,
                    "fresh",
                    "ann",
                    p.expansion_search,
                    p.latency.p50_ms,
                    p.latency.p99_ms,
                    p.recall,
                    r.ann_build_s,
                    r.ann_memory_bytes / 2**20,
                ]
            )
        for c in r.churn:
            rows.append([r.items, c.scenario, "exact", "-", c.exact_latency.p50_ms,
                         c.exact_latency.p99_ms, 1.0, "-", "-"])
            rows += [
                [r.items, f"{c.scenario} ({c.tombstones:,} tombstones)", "ann",
                 p.expansion_search, p.latency.p50_ms, p.latency.p99_ms, p.recall, "-", "-"]
                for p in c.ann
            ]
    return format_table(headers, rows)


def _k(results: Sequence[SizeResult]) -> int:
    return results[0].k if results else 0


def retrieval_chart(results: Sequence[SizeResult]) -> Callable[[Figure], None]:
    """Latency by catalog size, recall against p99 per ef, and build time."""

    def draw(fig: Figure) -> None:
        lat, rec, build = fig.subplots(1, 3)
        sizes = [r.items for r in results]
        lat.plot(sizes, [r.exact_latency.p99_ms for r in results], "o-", label="exact p99")
        lat.plot(sizes, [r.exact_latency.p50_ms for r in results], "o--", label="exact p50")
        for j in range(max((len(r.ann) for r in results), default=0)):
            pts = [(r.items, r.ann[j]) for r in results if j < len(r.ann)]
            ef = pts[0][1].expansion_search
            lat.plot(
                [s for s, _ in pts],
                [p.latency.p99_ms for _, p in pts],
                "s-",
                label=f"ANN ef={ef} p99",
            )
        lat.axhline(TARGET_P99_MS, color="grey", lw=0.8, ls=":")
        lat.set(
            xscale="log",
            yscale="log",
            xlabel="catalog items",
            ylabel="ms per user (single query)",
            title="Search latency",
        )
        lat.legend(fontsize=7)
        for r in results:
            rec.plot(
                [p.latency.p99_ms for p in r.ann],
                [p.recall for p in r.ann],
                "o-",
                label=f"{r.items:,} items",
            )
            for p in r.ann:
                rec.annotate(f"ef {p.expansion_search}", (p.latency.p99_ms, p.recall), fontsize=6)
        rec.axhline(TARGET_RECALL, color="grey", lw=0.8, ls=":")
        rec.axvline(TARGET_P99_MS, color="grey", lw=0.8, ls=":")
        rec.set(
            xlabel="ANN p99 ms",
            ylabel=f"recall@{_k(results)} vs exact",
            title="ANN recall / latency",
        )
        rec.legend(fontsize=7)
        width = 0.35
        x = np.arange(len(results))
        build.bar(x - width / 2, [r.exact_build_s for r in results], width, label="exact")
        build.bar(x + width / 2, [r.ann_build_s for r in results], width, label="ANN")
        build.set_xticks(x, [f"{n:,}" for n in sizes])
        build.set(
            ylabel="seconds", title="Build time", yscale="log" if _spread(results) else "linear"
        )
        build.legend(fontsize=7)

    return draw


def _spread(results: Sequence[SizeResult]) -> bool:
    times = [t for r in results for t in (r.exact_build_s, r.ann_build_s) if t > 0]
    return bool(times) and max(times) / min(times) > 50 and not math.isnan(max(times))
