"""``bench pipeline``: the whole path under load, against two peers, on the embedded stack.

Figures: max sustained events/s (drain rate of a backlog), freshness p50/p95/p99 (event
timestamp → recommendation published, see `bench.outputs`) at fractions of that max, Redis
round trips and worker CPU per event, Redis bytes per user profile, worker peak RSS. Peers, in
the same run: (1) the encoder alone on the same texts, converted to events/s for the same mix
(the bound the pipeline can approach), measured right before and right after the drain; (2)
what a user would write by hand: a per-event loop with a confluent consumer,
sentence-transformers on one text, a redis-py read-modify-write of a JSON profile, numpy top-k
and a produce (`bench.pipeline_peers`). With ``rss_catalog`` the
run ends with one more worker started on a catalog of that many items (the real ones plus
clustered random vectors written straight to Redis: encoding 100,000 texts would take an
hour here), whose peak RSS after its first batch is the memory figure for that catalog size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import redis

from llmrec_stream.bench.cpu_account import RATE, Sampler, ThreadProfile, account
from llmrec_stream.bench.pipeline_batched import micro_batched_peer
from llmrec_stream.bench.pipeline_peers import encoder_bound, hand_written_peer, mean_bound
from llmrec_stream.bench.stack_run import MIX, BenchRun, cpu_s, peak_rss_mb, wait_for
from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.replay import publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.synthetic import SyntheticReplay, synthetic_replay


@dataclass(frozen=True, slots=True)
class LoadPoint:
    fraction: float
    rate: float
    achieved: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def bench_pipeline(
    encoder_dir: Path,
    *,
    n_items: int = 10_000,
    n_users: int = 5_000,
    drain_events: int = 20_000,
    load_s: float = 60.0,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.9),
    precision: Literal["fp32", "int8"] = "fp32",
    workers: int = 1,
    peer_events: int = 1_000,
    batched_events: int = 5_000,
    rss_catalog: int = 0,
    logdir: Path | None = None,
    pyspy: str | None = None,
) -> dict[str, Any]:
    """Run every measurement; returns the figures (the CLI writes JSON, PNG and a table).
    ``pyspy``: a py-spy binary to account the drain's CPU by part with."""
    world = synthetic_replay(
        n_items=n_items,
        n_users=n_users,
        n_events=drain_events + int(load_s * 2000),
        seed=13,
        mix=MIX,
    )
    out: dict[str, Any] = {
        "n_items": n_items,
        "n_users": n_users,
        "precision": precision,
        "workers": workers,
        "mix": MIX,
    }
    with DevStack() as stack:
        run = BenchRun(stack, encoder_dir, precision, logdir or Path(stack.workdir or "."))
        first = run.worker()
        publish(run.prod, world.items)
        t0 = time.monotonic()
        wait_for(lambda: run.redis.hlen(VECTORS) >= n_items, 3600, "the catalog", first)
        out["catalog_encode_s"] = time.monotonic() - t0
        publish(run.prod, world.users)
        wait_for(lambda: run.lag() == 0, 600, "the user attributes", first)
        first.stop()
        # the same settings as the workers: their environment is this process's plus run.env
        settings = Settings(encoder_dir=str(encoder_dir), encoder_precision=precision)
        # the encoder bound right before and right after the drain, so that both sides of the
        # ratio see the same machine (other people's load comes and goes within minutes)
        bounds = [encoder_bound(settings, world, MIX[0])]
        mem_before = int(run.redis.info("memory")["used_memory"])
        out |= _drain(run, world, drain_events, workers, pyspy)
        bounds.append(encoder_bound(settings, world, MIX[0]))
        users = sum(1 for _ in run.redis.scan_iter(match="u:*:p", count=1000))
        out["redis_bytes_per_user"] = (
            int(run.redis.info("memory")["used_memory"]) - mem_before
        ) / max(users, 1)
        stream = world.events[drain_events:]
        out["load"] = [
            asdict(p)
            for p in _load_points(run, stream, out["max_events_per_s"], fractions, load_s, workers)
        ]
        if rss_catalog:
            out["rss_catalog_items"] = rss_catalog
            out["rss_catalog_worker_peak_mb"] = _catalog_rss(run, world, rss_catalog)
        run.close()
        hand = hand_written_peer(stack, world, peer_events, settings.encoder.threads)
        batched = micro_batched_peer(stack, world, batched_events, settings)
    out["peer_hand_written"] = asdict(hand)
    out["peer_micro_batched"] = asdict(batched)
    out["peer_micro_batched_events_per_s"] = batched.events_per_s
    out["ratio_to_micro_batched"] = out["max_events_per_s"] / batched.events_per_s
    out["peer_hand_written_events_per_s"] = hand.events_per_s
    bound = mean_bound(bounds)
    out["peer_encoder"] = asdict(bound)
    out["peer_encoder_runs"] = [asdict(b) for b in bounds]
    out["peer_encoder_bound_events_per_s"] = bound.events_per_s
    out["ratio_to_encoder_bound"] = out["max_events_per_s"] / out["peer_encoder_bound_events_per_s"]
    out["ratio_to_hand_written"] = out["max_events_per_s"] / out["peer_hand_written_events_per_s"]
    # CPU seconds are less at the mercy of whatever else runs on the machine than rates are:
    # the share of the worker's CPU per event that the encoder alone would need
    out["cpu_ratio_to_encoder_bound"] = bound.cpu_ms_per_text * MIX[0] / out["cpu_ms_per_event"]
    return out


def _drain(
    run: BenchRun, world: SyntheticReplay, n: int, workers: int, pyspy: str | None = None
) -> dict[str, Any]:
    """Max sustained throughput: the rate at which workers clear a backlog of ``n`` events;
    with ``pyspy`` (its binary) also the CPU accounting by part (`bench.cpu_account`)."""
    start = run.outputs.ends()
    publish(run.prod, world.events[:n])  # restamped now; the workers are down
    crew = [run.worker(i) for i in range(workers)]
    wait_for(lambda: run.outputs.count_since(start) > 0, 300, "the first record", crew[0])
    samplers = [Sampler(w.proc.pid, pyspy) for w in crew if w.proc] if pyspy else []
    started, cpu0 = time.monotonic(), sum(cpu_s(w.proc.pid) for w in crew if w.proc)
    evalsha0 = _evalsha_calls(run.redis)
    wait_for(lambda: run.lag() == 0, 3600, "the backlog to drain", crew[0])
    seconds = time.monotonic() - started
    cpu = sum(cpu_s(w.proc.pid) for w in crew if w.proc) - cpu0
    profile = ThreadProfile()
    for sampler in samplers:
        profile.merge(sampler.stop())
    rss = max(peak_rss_mb(w.proc.pid) for w in crew if w.proc)
    calls = _evalsha_calls(run.redis) - evalsha0
    batches = run.outputs.count_since(start)
    for w in crew:
        w.stop()
    rate = n / seconds
    extra = {"cpu_account": account(profile, RATE, n)} if samplers else {}
    return {
        **extra,
        "max_events_per_s": rate,
        "drain_s": seconds,
        "cpu_ms_per_event": 1000 * cpu / n,
        "worker_peak_rss_mb": rss,
        "evalsha_per_event": calls / n,
        "records_published": batches,
    }


def _evalsha_calls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def _load_points(
    run: BenchRun,
    stream: list[Any],
    max_rate: float,
    fractions: tuple[float, ...],
    load_s: float,
    workers: int,
) -> list[LoadPoint]:
    crew = [run.worker(i) for i in range(workers)]
    points: list[LoadPoint] = []
    try:
        # warm up: the workers have joined and process once a record comes back
        warm, offset, start = stream[:50], 50, run.outputs.ends()
        publish(run.prod, warm)
        wait_for(lambda: run.outputs.count_since(start) > 0, 120, "the workers", crew[0])
        wait_for(lambda: run.lag() == 0, 120, "the warm-up", crew[0])
        for f in fractions:
            rate = f * max_rate
            n = int(rate * load_s)
            chunk, offset = stream[offset : offset + n], offset + n
            before = run.outputs.ends()
            started = time.monotonic()
            publish(run.prod, chunk, rate=rate)
            achieved = len(chunk) / (time.monotonic() - started)
            wait_for(lambda: run.lag() == 0, 600, "the load point to drain", crew[0])
            time.sleep(1.0)
            now_records = run.outputs.read(before, run.outputs.ends())
            fresh = [(r["published_ts"] - r["trigger_ts"]) / 1000 for r in now_records]
            q = np.percentile(fresh, [50, 95, 99]) * 1000 if fresh else [np.nan] * 3
            points.append(LoadPoint(f, rate, achieved, float(q[0]), float(q[1]), float(q[2])))
    finally:
        for w in crew:
            w.stop()
    return points


def _catalog_rss(run: BenchRun, world: SyntheticReplay, n_items: int) -> float:
    """Peak RSS of a fresh worker over a catalog of ``n_items``, after its first batch."""
    from llmrec_stream.bench.vectors import clustered_vectors

    have = int(run.redis.hlen(VECTORS))
    extra = max(0, n_items - have)
    vectors, _ = clustered_vectors(extra, seed=5)
    for first in range(0, extra, 10_000):
        chunk = vectors[first : first + 10_000]
        run.redis.hset(
            VECTORS,
            mapping={f"rss-item-{first + i:07d}": v.astype("<f4").tobytes()
                     for i, v in enumerate(chunk)},
        )
    del vectors
    start = run.outputs.ends()
    w = run.worker(0)  # static membership: a new id would share partitions with a gone one
    try:
        publish(run.prod, world.events[-50:])
        wait_for(lambda: run.outputs.count_since(start) > 0, 1800, "the big catalog", w)
        return peak_rss_mb(w.proc.pid) if w.proc else float("nan")
    finally:
        w.stop()
