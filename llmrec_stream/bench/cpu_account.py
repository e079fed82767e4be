"""Where a worker's CPU goes per event, by part of the path: a sampling profile of the drain.

Two readings of the worker process over the same drain, combined per thread:

* **CPU seconds per thread** from ``/proc/PID/task/TID/stat`` (the kernel's own accounting:
  exact, and blind to how long a thread waited for a core on a shared machine);
* **what each thread was doing**, from `py-spy` (a sampling profiler that reads another
  process's Python stacks from outside; no change to the worker) sampling every thread
  ``RATE`` times a second. py-spy counts a thread as busy while it is runnable, also while
  it waits for a core, so its sample counts measure wall time under contention, not CPU:
  only their *shares within one thread* are used.

Each sample's stack is assigned to one part by its innermost frame that belongs to a known
one (`PARTS`, checked leaf first: a Redis call made by the pipeline counts as Redis, numpy or
the standard library count as whoever called them; the event loop's own frames, such as a
transport's socket write, count as the loop only where no other part is on the stack). A
thread's CPU seconds are split over parts by its own samples' shares (within one thread
every part waits for a core alike, so the shares carry over); threads with no Python samples
(native threads) are their own row.
Per event = CPU seconds / events drained.

Optional: needs the ``py-spy`` binary (``pip install py-spy``, a profiler, not a runtime
dependency) on ``PATH`` or in ``$LLMREC_BENCH_PYSPY``, and ptrace rights over the worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYSPY_ENV = "LLMREC_BENCH_PYSPY"
RATE = 200
#: (part, path fragments of the frames' files), checked in this order for each frame. The
#: library's own modules name their part; third-party ones by what they do.
LOOP = "asyncio event loop (epoll, scheduling, wake-ups)"
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
    (LOOP, ("asyncio/", "uvloop", "selectors.py")),
    ("logging / metrics", ("logging/", "prometheus_client", "llmrec_stream/metrics",
                           "llmrec_stream/logs")),
)
OTHER = "other (stdlib, numpy, unattributed)"


def pyspy_binary() -> str | None:
    """The py-spy to use, or None where there is none: ``$LLMREC_BENCH_PYSPY``, then the
    one the `bench` extra installed beside this interpreter (a venv run without activating
    it has no PATH entry for it), then ``PATH``."""
    beside = str(Path(sys.executable).parent)
    found = (os.environ.get(PYSPY_ENV) or shutil.which("py-spy", path=beside)
             or shutil.which("py-spy"))
    return found if found and Path(found).is_file() else None


def part_of(frames: list[str]) -> str:
    """The part of one stack (``frames`` root first, as py-spy's raw format writes them):
    its innermost frame of a specific part; the event loop's own frames count only where no
    specific part is on the stack (a socket write under the Redis client is Redis's, an
    ``epoll`` wait under the loop alone is the loop's)."""
    # what runs the loop (the worker's start-up: mode, Faust) sits outside the loop's
    # ``_run_once``; only what the loop is running now is inside it
    starts = [i for i, f in enumerate(frames) if f.startswith("_run_once (") or
              f.startswith("BaseEventLoop._run_once (")]
    if starts:
        frames = frames[starts[-1]:]
    fallback = None
    for frame in reversed(frames):
        where = frame.replace("\\", "/")
        for part, fragments in PARTS:
            if any(f in where for f in fragments):
                if part != LOOP:
                    return part
                fallback = fallback or part
    return fallback or OTHER


def parse_raw(lines: Iterable[str]) -> Counter[tuple[int, str]]:
    """Samples per (thread id, part) from py-spy's ``--format raw --threads`` output
    (``thread (TID): NAME;f1;f2;... COUNT`` lines; thread id 0 where a line names none)."""
    out: Counter[tuple[int, str]] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        tid = 0
        if frames[0].startswith("thread ("):
            head = frames[0][len("thread ("):].split(")", 1)[0]
            tid = int(head, 16) if head.startswith("0x") else int(head) if head.isdigit() else 0
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        out[tid, part_of(frames)] += int(count)
    return out


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every thread of ``pid``, by thread id."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended between the listing and the read
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


class Sampler:
    """py-spy recording one process until `stop`; `stop` returns samples per part."""

    def __init__(self, pid: int, binary: str, rate: int = RATE) -> None:
        self.rate, self.pid = rate, pid
        self._cpu0 = thread_cpu_s(pid)
        self._dir = tempfile.mkdtemp(prefix="llmrec-pyspy-")
        self._out = Path(self._dir) / "raw.txt"
        self._log = open(Path(self._dir) / "py-spy.log", "wb")  # noqa: SIM115 - closed in stop
        self._proc = subprocess.Popen(  # noqa: S603 - a profiler binary the user named
            [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
             "--nonblocking", "--threads", "--output", str(self._out)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 30.0) -> ThreadProfile:
        """Ends the recording (py-spy writes its file on SIGINT) and parses it, with each
        thread's CPU seconds since the start."""
        cpu1 = thread_cpu_s(self.pid)
        cpu = {tid: t - self._cpu0.get(tid, 0.0) for tid, t in cpu1.items()}
        try:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        finally:
            self._log.close()
        try:
            if not self._out.exists():
                log = (Path(self._dir) / "py-spy.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"py-spy wrote no profile: {log}")
            with self._out.open(encoding="utf-8", errors="replace") as fh:
                return ThreadProfile(parse_raw(fh), cpu)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class ThreadProfile:
    """One worker's drain: samples per (thread, part) and CPU seconds per thread."""

    samples: Counter[tuple[int, str]] = field(default_factory=Counter)
    cpu_s: dict[int, float] = field(default_factory=dict)

    def merge(self, other: ThreadProfile) -> None:
        """Add another worker's (thread ids are unique on one machine at one time)."""
        self.samples.update(other.samples)
        self.cpu_s.update(other.cpu_s)


NATIVE = "threads with no Python frames (native)"


def account(profile: ThreadProfile, rate: int, events: int) -> dict[str, Any]:
    """CPU ms per event by part, JSON-ready: each thread's CPU split by its samples' shares."""
    if events < 1:
        raise ValueError("no events")
    by_thread: dict[int, Counter[str]] = {}
    for (tid, part), n in profile.samples.items():
        by_thread.setdefault(tid, Counter())[part] += n
    parts: dict[str, float] = defaultdict(float)
    for tid, cpu in profile.cpu_s.items():
        seen = by_thread.get(tid)
        if not seen:
            parts[NATIVE] += cpu
            continue
        total = sum(seen.values())
        for part, n in seen.items():
            parts[part] += cpu * n / total
    cpu_total = sum(profile.cpu_s.values())
    ms = {part: 1000 * s / events for part, s in sorted(parts.items(), key=lambda kv: -kv[1])}
    return {"rate_hz": rate, "events": events,
            "samples": sum(profile.samples.values()),
            "threads": {str(t): c for t, c in sorted(profile.cpu_s.items()) if c > 0},
            "worker_cpu_ms_per_event": 1000 * cpu_total / events,
            "parts_ms_per_event": ms,
            "shares": {p: s / cpu_total for p, s in parts.items()} if cpu_total > 0 else {}}


def account_table(acc: dict[str, Any]) -> str:
    from llmrec_stream.bench.report import format_table

    rows: list[list[object]] = [[p, v, acc["shares"].get(p, float("nan"))]
                                for p, v in acc["parts_ms_per_event"].items()]
    rows.append(["worker CPU ms/event (all threads, /proc)", acc["worker_cpu_ms_per_event"],
                 1.0])
    return (f"CPU accounting of the drain (py-spy, {acc['rate_hz']} Hz, {acc['samples']} "
            f"samples, {acc['events']} events):\n"
            + format_table(["part", "CPU ms/event", "share"], rows))
