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

import os
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import redis

from llmrec_stream.bench.cpu_account import RATE, Sampler, account
from llmrec_stream.bench.outputs import Outputs
from llmrec_stream.bench.pipeline_batched import micro_batched_peer
from llmrec_stream.bench.pipeline_peers import encoder_bound, hand_written_peer, mean_bound
from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.events import topics
from llmrec_stream.kafka_lag import lag_consumer, partition_lag
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.synthetic import SyntheticReplay, synthetic_replay

EVENT_TOPICS = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES, topics.USERS]
MIX = (0.3, 0.5, 0.2)


@dataclass(frozen=True, slots=True)
class LoadPoint:
    fraction: float
    rate: float
    achieved: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait(check: Any, timeout: float, what: str, worker: WorkerProcess) -> None:
    worker.wait_until(check, timeout, what)


class _LagProbe:
    """Events the workers' group has not committed yet, through one long-lived consumer
    (a consumer per check, five times a second, cost the 2-core machine CPU the workers
    were being measured on)."""

    def __init__(self, bootstrap: str, group_id: str, partitions: int) -> None:
        self._consumer = lag_consumer(bootstrap, group_id)
        self._tps = [(t, p) for t in EVENT_TOPICS for p in range(partitions)]

    def __call__(self) -> int:
        return sum(partition_lag(self._consumer, self._tps).values())

    def close(self) -> None:
        self._consumer.close()


class _Run:
    """One embedded stack, one catalog, workers that come and go."""

    def __init__(self, stack: DevStack, encoder_dir: Path, precision: str, logdir: Path) -> None:
        self.stack = stack
        self.app_id = f"bench-{uuid.uuid4().hex[:6]}"
        self.env = {
            **stack.env(),
            "LLMREC_ENCODER_DIR": str(encoder_dir),
            "LLMREC_ENCODER_PRECISION": precision,
            "LLMREC_APP_ID": self.app_id,
            "LLMREC_METRICS_PORT": "0",
        }
        self.logdir = logdir
        self.prod = producer(stack.kafka_bootstrap)
        self.redis = redis.Redis.from_url(stack.redis_url)
        self._lag = _LagProbe(stack.kafka_bootstrap, self.app_id, stack.partitions)
        self.outputs = Outputs(stack.kafka_bootstrap, stack.partitions)

    def worker(self, n: int = 0) -> WorkerProcess:
        w = WorkerProcess(self.env, self.logdir / f"worker-{n}.log", worker_id=f"{self.app_id}-{n}")
        w.start()
        return w

    def lag(self) -> int:
        return self._lag()

    def close(self) -> None:
        self._lag.close()
        self.outputs.close()
        self.prod.flush(10)


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
        run = _Run(stack, encoder_dir, precision, logdir or Path(stack.workdir or "."))
        first = run.worker()
        publish(run.prod, world.items)
        t0 = time.monotonic()
        _wait(lambda: run.redis.hlen(VECTORS) >= n_items, 3600, "the catalog", first)
        out["catalog_encode_s"] = time.monotonic() - t0
        publish(run.prod, world.users)
        _wait(lambda: run.lag() == 0, 600, "the user attributes", first)
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
        hand = hand_written_peer(stack, world, peer_events, settings.encoder_threads)
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
    run: _Run, world: SyntheticReplay, n: int, workers: int, pyspy: str | None = None
) -> dict[str, Any]:
    """Max sustained throughput: the rate at which workers clear a backlog of ``n`` events;
    with ``pyspy`` (its binary) also the CPU accounting by part (`bench.cpu_account`)."""
    start = run.outputs.ends()
    publish(run.prod, world.events[:n])  # restamped now; the workers are down
    crew = [run.worker(i) for i in range(workers)]
    _wait(lambda: run.outputs.count_since(start) > 0, 300, "the first record", crew[0])
    samplers = [Sampler(w.proc.pid, pyspy) for w in crew if w.proc] if pyspy else []
    started, cpu0 = time.monotonic(), sum(_cpu_s(w.proc.pid) for w in crew if w.proc)
    evalsha0 = _evalsha_calls(run.redis)
    _wait(lambda: run.lag() == 0, 3600, "the backlog to drain", crew[0])
    seconds = time.monotonic() - started
    cpu = sum(_cpu_s(w.proc.pid) for w in crew if w.proc) - cpu0
    samples: Counter[str] = Counter()
    for sampler in samplers:
        samples.update(sampler.stop())
    rss = max(_peak_rss_mb(w.proc.pid) for w in crew if w.proc)
    calls = _evalsha_calls(run.redis) - evalsha0
    batches = run.outputs.count_since(start)
    for w in crew:
        w.stop()
    rate = n / seconds
    extra = {"cpu_account": account(samples, RATE, n, cpu)} if samplers else {}
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
    run: _Run,
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
        _wait(lambda: run.outputs.count_since(start) > 0, 120, "the workers", crew[0])
        _wait(lambda: run.lag() == 0, 120, "the warm-up", crew[0])
        for f in fractions:
            rate = f * max_rate
            n = int(rate * load_s)
            chunk, offset = stream[offset : offset + n], offset + n
            before = run.outputs.ends()
            started = time.monotonic()
            publish(run.prod, chunk, rate=rate)
            achieved = len(chunk) / (time.monotonic() - started)
            _wait(lambda: run.lag() == 0, 600, "the load point to drain", crew[0])
            time.sleep(1.0)
            now_records = run.outputs.read(before, run.outputs.ends())
            fresh = [(r["published_ts"] - r["trigger_ts"]) / 1000 for r in now_records]
            q = np.percentile(fresh, [50, 95, 99]) * 1000 if fresh else [np.nan] * 3
            points.append(LoadPoint(f, rate, achieved, float(q[0]), float(q[1]), float(q[2])))
    finally:
        for w in crew:
            w.stop()
    return points


def _catalog_rss(run: _Run, world: SyntheticReplay, n_items: int) -> float:
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
        _wait(lambda: run.outputs.count_since(start) > 0, 1800, "the big catalog", w)
        return _peak_rss_mb(w.proc.pid) if w.proc else float("nan")
    finally:
        w.stop()


def pipeline_table(r: dict[str, Any]) -> str:
    from llmrec_stream.bench.report import format_table

    enc, hand = r["peer_encoder"], r["peer_hand_written"]
    rows: list[list[object]] = [
        [f"max sustained events/s (drain, {r['workers']} worker(s))", r["max_events_per_s"]],
        [
            f"peer 1: encoder-only bound events/s ({enc['texts_per_s']:.0f} texts/s, "
            f"{enc['cpu_ms_per_text']:.1f} CPU ms/text)",
            r["peer_encoder_bound_events_per_s"],
        ],
        ["  ratio (target >= 0.8)", r["ratio_to_encoder_bound"]],
        ["  by CPU: encoder CPU ms/event / worker CPU ms/event", r["cpu_ratio_to_encoder_bound"]],
        [
            f"peer 2: hand-written loop events/s ({hand['comments']}/{hand['events']} "
            "comments encoded)",
            r["peer_hand_written_events_per_s"],
        ],
        ["  ratio (target >= 10)", r["ratio_to_hand_written"]],
    ]
    if "peer_micro_batched" in r:
        batched = r["peer_micro_batched"]
        rows += [
            [
                f"peer 3: micro-batched loop events/s ({batched['encoder']}, batches of "
                f"<= {batched['batch_max']}, {batched['cpu_ms_per_event']:.1f} CPU ms/event)",
                r["peer_micro_batched_events_per_s"],
            ],
            ["  ratio (target >= 2)", r["ratio_to_micro_batched"]],
        ]
    rows += [
        ["worker CPU ms/event", r["cpu_ms_per_event"]],
        ["EVALSHA calls/event", r["evalsha_per_event"]],
        ["Redis bytes/user (target <= 4096)", r["redis_bytes_per_user"]],
        ["worker peak RSS MB", r["worker_peak_rss_mb"]],
    ]
    if "rss_catalog_items" in r:
        rows.append(
            [
                f"worker peak RSS MB, {r['rss_catalog_items']:,}-item catalog (target <= 1024)",
                r["rss_catalog_worker_peak_mb"],
            ]
        )
    for p in r["load"]:
        rows.append(
            [
                f"freshness @{p['fraction']:.0%} of max ({p['achieved']:.0f}/s) p50/p95/p99 ms",
                f"{p['p50_ms']:.0f} / {p['p95_ms']:.0f} / {p['p99_ms']:.0f}",
            ]
        )
    return format_table(["measure", "value"], rows)


def pipeline_chart(r: dict[str, Any]) -> Any:
    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        names = ["pipeline", "encoder bound", "hand-written"]
        vals = [
            r["max_events_per_s"],
            r["peer_encoder_bound_events_per_s"],
            r["peer_hand_written_events_per_s"],
        ]
        if "peer_micro_batched_events_per_s" in r:
            names.append("micro-batched")
            vals.append(r["peer_micro_batched_events_per_s"])
        ax1.bar(names, vals)
        ax1.set_ylabel("events/s")
        ax1.set_title("throughput")
        fr = [p["fraction"] for p in r["load"]]
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            ax2.plot(fr, [p[q] for p in r["load"]], marker="o", label=q)
        ax2.axhline(1000, ls="--", c="grey")
        ax2.set_xlabel("fraction of max load")
        ax2.set_ylabel("freshness ms")
        ax2.legend()

    return draw
