"""``bench swap``: the worker's event-loop stall and freshness while it hot-swaps ranking models.

One worker process (the real ``streams worker`` command, plus the stall probe:
`streams.stall_probe`, its meter in `bench.loop_probe`) runs on the embedded stack under a
steady paced load. Two ranking models,
real exports of the trainer's sequence model (``trainer.export.write_artifact``) over this
catalog's items and text vectors, are published on ``llmrec.models`` while events flow, the
second with a better validation score so that it is promoted too. The worker checks each,
promotes it and swaps it in between micro-batches (`ModelFollower.poll`, the
``follow_models`` timer). The figures, per phase of the run (before, each swap, between,
after): the longest event-loop stall the probe saw and the freshness p50/p99 of the
recommendations published in that phase. A swap phase runs from the record's publication
to ``settle_s`` after the first recommendation served by the new model.

The models are untrained (random weights): what a swap costs does not depend on what the
weights say, and training one here would take minutes of the CPU the worker is measured on.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmrec_stream.bench.loop_probe import STALL_FILE_ENV, WINDOW_S, StallWindow, read_windows
from llmrec_stream.bench.stack_run import MIX, BenchRun
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.events import topics
from llmrec_stream.ranking.registry import ModelRecord
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.synthetic import synthetic_replay

#: The issue's target for the longest stall during a swap.
TARGET_STALL_MS = 100.0


class ProbedWorker(WorkerProcess):
    """`WorkerProcess` running the worker command through the stall probe."""

    def __init__(self, env: dict[str, str], log_path: Path, worker_id: str, stall_file: Path):
        super().__init__({**env, STALL_FILE_ENV: str(stall_file)}, log_path, worker_id)
        self.stall_file = stall_file

    def start(self) -> None:
        import subprocess
        import sys

        from llmrec_stream.devstack.process import _die_with_parent_hook

        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "streams.stall_probe", "worker", "--without-web",
             "-l", "info"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - only sets the death signal
        )


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start_ts: float
    end_ts: float
    records: int
    p50_ms: float
    p99_ms: float
    max_stall_ms: float
    stall_p95_ms: float
    """95th percentile of the windows' worst stalls: the usual bad moment, not the worst."""
    stall_windows: int


def model_artifact(out: Path, ids: list[str], text: np.ndarray, version: str,
                   ndcg: float, seed: int) -> ModelRecord:
    """An exported sequence model over ``ids`` (text rows aligned), and its record."""
    import torch

    from llmrec_stream.trainer.export import write_artifact
    from llmrec_stream.trainer.hybrid import HybridSeq

    torch.manual_seed(seed)
    item_text = torch.zeros(len(ids) + 1, text.shape[1])
    item_text[1:] = torch.from_numpy(text)
    net = HybridSeq(len(ids), item_text).eval()
    with torch.no_grad():
        items = net.item_matrix().numpy().copy()
    items[0] = 0
    path = write_artifact(out / version, net, item_ids=ids, items=items,
                          item_text=item_text.numpy(), version=version,
                          metrics={"valid": {"ndcg@10": ndcg}}, params={"bench": "swap"})
    return ModelRecord.for_artifact(path)


def phases(
    bounds: list[tuple[str, float, float]],
    records: list[dict[str, Any]],
    windows: list[StallWindow],
) -> list[Phase]:
    """Freshness and stall per named [start, end) wall-time span (seconds)."""
    out: list[Phase] = []
    for name, lo, hi in bounds:
        fresh = [r["published_ts"] - r["trigger_ts"] for r in records
                 if lo * 1000 <= r["published_ts"] < hi * 1000]
        stalls = [w.max_stall_ms for w in windows if lo <= w.end_ts < hi]
        q = np.percentile(fresh, [50, 99]) if fresh else [float("nan")] * 2
        out.append(Phase(name, lo, hi, len(fresh), float(q[0]), float(q[1]),
                         max(stalls, default=float("nan")),
                         float(np.percentile(stalls, 95)) if stalls else float("nan"),
                         len(stalls)))
    return out


def bench_swap(
    encoder_dir: Path,
    *,
    n_items: int = 2_000,
    n_users: int = 1_000,
    rate: float = 100.0,
    load_s: float = 45.0,
    first_at_s: float = 12.0,
    second_at_s: float = 28.0,
    settle_s: float = 2.0,
    precision: Literal["fp32", "int8"] = "int8",
    logdir: Path | None = None,
) -> dict[str, Any]:
    """Run the load with two swaps; returns the figures (the CLI writes JSON, PNG, table)."""
    world = synthetic_replay(n_items=n_items, n_users=n_users, n_events=int(rate * load_s) + 100,
                             seed=17, mix=MIX)
    out: dict[str, Any] = {"n_items": n_items, "n_users": n_users, "rate": rate,
                           "load_s": load_s, "precision": precision}
    with DevStack() as stack:
        logs = logdir or Path(stack.workdir or ".")
        run = BenchRun(stack, encoder_dir, precision, logs)
        stall_file = logs / f"stalls-{uuid.uuid4().hex[:6]}.jsonl"
        worker = ProbedWorker(run.env, logs / "worker-swap.log", f"{run.app_id}-0", stall_file)
        worker.start()
        try:
            publish(run.prod, world.items)
            worker.wait_until(lambda: run.redis.hlen(VECTORS) >= n_items, 3600, "the catalog")
            publish(run.prod, world.users)
            worker.wait_until(lambda: run.lag() == 0, 600, "the user attributes")
            raw: dict[bytes, bytes] = run.redis.hgetall(VECTORS)  # type: ignore[assignment]
            ids = sorted(k.decode() for k in raw)
            text = np.stack([np.frombuffer(raw[i.encode()], dtype="<f4") for i in ids])
            made = time.monotonic()
            models = [model_artifact(logs / "models", ids, text, f"swap-{n}", ndcg, seed=n)
                      for n, ndcg in ((1, 0.5), (2, 0.6))]
            out["model_export_s"] = (time.monotonic() - made) / 2
            out["model_bytes"] = sum(f.stat().st_size for f in Path(models[0].location).iterdir())
            out |= _load_with_swaps(run, world.events, worker, models, rate, load_s,
                                    (first_at_s, second_at_s), settle_s)
        finally:
            worker.stop()
            run.close()
    return out


def _load_with_swaps(
    run: BenchRun,
    stream: list[Any],
    worker: ProbedWorker,
    models: list[ModelRecord],
    rate: float,
    load_s: float,
    at_s: tuple[float, float],
    settle_s: float,
) -> dict[str, Any]:
    warm, start_offsets = stream[:50], run.outputs.ends()
    publish(run.prod, warm)
    worker.wait_until(lambda: run.outputs.count_since(start_offsets) > 0, 120, "the worker")
    worker.wait_until(lambda: run.lag() == 0, 120, "the warm-up")
    before = run.outputs.ends()
    chunk = stream[50 : 50 + int(rate * load_s)]
    load = threading.Thread(target=publish, args=(run.prod, chunk), kwargs={"rate": rate})
    load_start = time.time()
    load.start()
    models_prod = producer(run.stack.kafka_bootstrap)
    published: list[float] = []
    for record, at in zip(models, at_s, strict=True):
        time.sleep(max(0.0, load_start + at - time.time()))
        published.append(time.time())
        models_prod.produce(topics.MODELS, record.dumps(), b"model")
        models_prod.flush(10)
    load.join()
    load_end = time.time()
    worker.wait_until(lambda: run.lag() == 0, 600, "the load to drain")
    time.sleep(1.0)
    records = run.outputs.read(before, run.outputs.ends())
    windows = read_windows(worker.stall_file)
    seen: list[float] = []
    for record in models:
        served = [r["published_ts"] for r in records if r["model_version"] == record.version]
        if not served:
            raise RuntimeError(f"no recommendation from {record.version}:\n{worker.log_tail()}")
        seen.append(min(served) / 1000)
    bounds = [
        ("before", load_start + 2.0, published[0]),
        ("swap 1", published[0], seen[0] + settle_s),
        ("between", seen[0] + settle_s, published[1]),
        ("swap 2", published[1], seen[1] + settle_s),
        ("after", seen[1] + settle_s, load_end),
    ]
    result = phases(bounds, records, windows)
    swap = [p for p in result if p.name.startswith("swap")]
    steady = [p for p in result if not p.name.startswith("swap")]
    return {
        "models": [m.version for m in models],
        "swap_seen_after_s": [s - p for s, p in zip(seen, published, strict=True)],
        "phases": [asdict(p) for p in result],
        "swap_max_stall_ms": max(p.max_stall_ms for p in swap),
        "steady_max_stall_ms": max(p.max_stall_ms for p in steady),
        "swap_p99_ms": float(np.percentile(
            [r["published_ts"] - r["trigger_ts"] for r in records
             if any(p.start_ts * 1000 <= r["published_ts"] < p.end_ts * 1000 for p in swap)],
            99)),
        "target_stall_ms": TARGET_STALL_MS,
        # the timeline, to tell where a stall fell: record published, first record served
        "models_published_ts": published,
        "models_served_ts": seen,
        "stall_windows": [(w.end_ts, round(w.max_stall_ms, 2)) for w in windows
                          if load_start <= w.end_ts <= load_end],
        "achieved_rate": len(chunk) / (load_end - load_start),
    }


def swap_table(r: dict[str, Any]) -> str:
    from llmrec_stream.bench.report import format_table

    rows: list[list[object]] = [
        [p["name"], f"{p['end_ts'] - p['start_ts']:.1f}", p["records"], p["p50_ms"],
         p["p99_ms"], p["max_stall_ms"], p["stall_p95_ms"]]
        for p in r["phases"]
    ]
    table = format_table(
        ["phase", "seconds", "records", "fresh p50 ms", "fresh p99 ms", "max stall ms",
         f"p95 of {WINDOW_S:g}-s stall maxima ms"],
        rows,
    )
    verdict = "met" if r["swap_max_stall_ms"] <= r["target_stall_ms"] else "MISSED"
    return (
        f"{table}\nswaps seen after {', '.join(f'{s:.2f}' for s in r['swap_seen_after_s'])} s; "
        f"longest stall during swaps {r['swap_max_stall_ms']:.0f} ms (outside swaps "
        f"{r['steady_max_stall_ms']:.0f} ms), freshness p99 during swaps "
        f"{r['swap_p99_ms']:.0f} ms; target stall <= {r['target_stall_ms']:.0f} ms: {verdict}"
    )


def swap_chart(r: dict[str, Any]) -> Any:
    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        names = [p["name"] for p in r["phases"]]
        ax1.bar(names, [p["max_stall_ms"] for p in r["phases"]])
        ax1.axhline(r["target_stall_ms"], ls="--", c="grey")
        ax1.set_ylabel("longest event-loop stall ms")
        ax2.bar(names, [p["p99_ms"] for p in r["phases"]])
        ax2.set_ylabel("freshness p99 ms")

    return draw
