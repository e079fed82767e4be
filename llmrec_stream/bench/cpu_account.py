"""Where a worker's CPU goes per event, by part of the path: a sampling profile of the drain.

`py-spy` (a sampling profiler that reads another process's Python stacks from outside; no
change to the worker, its cost lands on the profiler's own process) samples every thread of
the worker that is on the CPU (idle threads are left out) ``RATE`` times a second while the
backlog drains. Each sample's stack is assigned to one part by its innermost frame that
belongs to a known one (`PARTS`, checked leaf first: a Redis call made by the pipeline counts
as Redis, numpy or the standard library count as whoever called them). Samples / rate =
CPU seconds per part; per event = that / events drained. What the samples miss (threads with
no Python frames: none on the worker's onnxruntime path, which runs one intra-op thread per
run on the executor's own threads) shows as ``unsampled``: the worker's CPU from
``/proc/PID/stat`` minus the sampled total (sampling noise makes it a few % either way).

Optional: needs the ``py-spy`` binary (``pip install py-spy``, a profiler, not a runtime
dependency) on ``PATH`` or in ``$LLMREC_BENCH_PYSPY``, and ptrace rights over the worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PYSPY_ENV = "LLMREC_BENCH_PYSPY"
RATE = 200
#: (part, path fragments of the frames' files), checked in this order for each frame. The
#: library's own modules name their part; third-party ones by what they do.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("encode (tokenize + onnxruntime)", ("llmrec_stream/encoder/", "onnxruntime/",
                                         "tokenizers/", "openvino/")),
    ("Redis (profiles, recent, catalog reads)", ("llmrec_stream/profiles/store",
                                                 "llmrec_stream/redis_conn", "redis/")),
    ("ranking / top-k / retrieval", ("llmrec_stream/ranking/", "llmrec_stream/retrieval/",
                                     "faiss/", "llmrec_stream/explain")),
    ("profile maths (fusion)", ("llmrec_stream/profiles/fusion",)),
    ("publish (record encoding, produce)", ("llmrec_stream/profiles/recs",
                                            "llmrec_stream/publish", "aiokafka/producer",
                                            "faust/transport/producer", "faust/topics")),
    ("decode / validate events", ("llmrec_stream/events/", "llmrec_stream/dlq",
                                  "jsonschema", "fastjsonschema", "orjson", "msgspec")),
    ("commit bookkeeping", ("llmrec_stream/commit",)),
    ("pipeline logic (other)", ("llmrec_stream/pipeline/", "llmrec_stream/sentiment",
                                "llmrec_stream/social", "llmrec_stream/sponsored",
                                "streams/agents")),
    ("Kafka consume + Faust/aiokafka/mode", ("aiokafka/", "faust/", "mode/", "kafka/",
                                             "streams/")),
    ("asyncio event loop", ("asyncio/", "uvloop")),
    ("logging / metrics", ("logging/", "prometheus_client", "llmrec_stream/metrics",
                           "llmrec_stream/logs")),
)
OTHER = "other (stdlib, numpy, unattributed)"


def pyspy_binary() -> str | None:
    """The py-spy to use, or None where there is none."""
    found = os.environ.get(PYSPY_ENV) or shutil.which("py-spy")
    return found if found and Path(found).is_file() else None


def part_of(frames: list[str]) -> str:
    """The part of one stack (``frames`` root first, as py-spy's raw format writes them)."""
    for frame in reversed(frames):
        where = frame.replace("\\", "/")
        for part, fragments in PARTS:
            if any(f in where for f in fragments):
                return part
    return OTHER


def parse_raw(lines: Iterable[str]) -> Counter[str]:
    """Samples per part from py-spy's ``--format raw`` output (``f1;f2;... COUNT`` lines)."""
    out: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        out[part_of(frames)] += int(count)
    return out


class Sampler:
    """py-spy recording one process until `stop`; `stop` returns samples per part."""

    def __init__(self, pid: int, binary: str, rate: int = RATE) -> None:
        self.rate = rate
        self._dir = tempfile.mkdtemp(prefix="llmrec-pyspy-")
        self._out = Path(self._dir) / "raw.txt"
        self._log = open(Path(self._dir) / "py-spy.log", "wb")  # noqa: SIM115 - closed in stop
        self._proc = subprocess.Popen(  # noqa: S603 - a profiler binary the user named
            [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
             "--nonblocking", "--threads", "--output", str(self._out)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 30.0) -> Counter[str]:
        """Ends the recording (py-spy writes its file on SIGINT) and parses it."""
        try:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        finally:
            self._log.close()
        if not self._out.exists():
            log = (Path(self._dir) / "py-spy.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"py-spy wrote no profile: {log}")
        with self._out.open(encoding="utf-8", errors="replace") as fh:
            return parse_raw(fh)


def account(
    samples: Counter[str], rate: int, events: int, worker_cpu_s: float
) -> dict[str, Any]:
    """CPU ms per event by part, JSON-ready, with the unsampled rest and the shares."""
    if events < 1:
        raise ValueError("no events")
    sampled_s = sum(samples.values()) / rate
    parts = {part: 1000 * n / rate / events for part, n in samples.most_common()}
    parts["unsampled (worker CPU - sampled)"] = 1000 * (worker_cpu_s - sampled_s) / events
    total = 1000 * worker_cpu_s / events
    return {"rate_hz": rate, "events": events, "samples": sum(samples.values()),
            "worker_cpu_ms_per_event": total,
            "parts_ms_per_event": parts,
            "shares": {p: v / total for p, v in parts.items()} if total > 0 else {}}


def account_table(acc: dict[str, Any]) -> str:
    from llmrec_stream.bench.report import format_table

    rows: list[list[object]] = [[p, v, acc["shares"].get(p, float("nan"))]
                                for p, v in acc["parts_ms_per_event"].items()]
    rows.append(["worker CPU ms/event (from /proc)", acc["worker_cpu_ms_per_event"], 1.0])
    return (f"CPU accounting of the drain (py-spy, {acc['rate_hz']} Hz, {acc['samples']} "
            f"samples, {acc['events']} events):\n"
            + format_table(["part", "CPU ms/event", "share"], rows))
