"""The drain's CPU accounting: stacks to parts, samples to CPU ms per event."""

from __future__ import annotations

from collections import Counter

import pytest

from llmrec_stream.bench.cpu_account import (
    LOOP,
    NATIVE,
    OTHER,
    ThreadProfile,
    account,
    account_table,
    parse_raw,
    part_of,
    thread_cpu_s,
)

RAW = [
    "thread (1): MainThread;run (asyncio/base_events.py:600);_process (streams/agents.py:90);"
    "handle (llmrec_stream/pipeline/assembled.py:40);execute (redis/client.py:1200) 7\n",
    "thread (2): ThreadPoolExecutor-0_0;_worker (concurrent/futures/thread.py:83);"
    "encode (llmrec_stream/encoder/runtime.py:390);run (onnxruntime/capi/session.py:406) 10\n",
    "thread (1): MainThread;run (asyncio/base_events.py:600);"
    "_recommend (llmrec_stream/pipeline/assembled.py:80);rank (llmrec_stream/ranking/fused.py:9);"
    "argpartition (numpy/core/fromnumeric.py:858) 3\n",
    "thread (1): MainThread;_run_once (asyncio/base_events.py:1900) 2\n",
    "thread (1): MainThread;<module> (something.py:1) 1\n",
    "garbage line\n",
]


def test_the_innermost_known_frame_names_the_part() -> None:
    counts = parse_raw(RAW)
    assert counts == Counter({
        (2, "encode (tokenize + onnxruntime)"): 10,
        (1, "Redis (profiles, recent, catalog reads)"): 7,  # called by the pipeline: Redis
        (1, "ranking / top-k / retrieval"): 3,  # numpy under the ranker counts as ranking
        (1, LOOP): 2,
        (1, OTHER): 1,
    })
    assert part_of(["handle (llmrec_stream/pipeline/assembled.py:1)"]) == "pipeline logic (other)"
    # a socket write is charged to whoever writes: Redis here, the loop only when alone
    write = "_SelectorSocketTransport.write (asyncio/selector_events.py:1057)"
    assert part_of(["_run_once (asyncio/base_events.py:1)", "execute (redis/asyncio/client.py:1)",
                    write]) == "Redis (profiles, recent, catalog reads)"
    assert part_of(["_run_once (asyncio/base_events.py:1)", "select (selectors.py:468)"]) == LOOP
    # the frames that started the loop (Faust's worker, mode) are not what it runs
    root = ["execute_from_commandline (mode/worker.py:1)", "run_forever (asyncio/base_events.py:1)",
            "BaseEventLoop._run_once (asyncio/base_events.py:2)"]
    assert part_of([*root, "EpollSelector.select (selectors.py:468)"]) == LOOP
    assert part_of([*root, "Handle._run (asyncio/events.py:80)",
                    "Fetcher._fetch (aiokafka/consumer/fetcher.py:1)"]) == (
        "Kafka consume + Faust/aiokafka/mode")


def test_each_thread_s_cpu_is_split_by_its_own_samples() -> None:
    # thread 1 waited for a core half the time (twice the samples its CPU explains): only
    # the shares within the thread count; thread 3 has no Python frames at all
    samples = Counter({(1, LOOP): 300, (1, "Redis (profiles, recent, "
                       "catalog reads)"): 100, (2, "encode (tokenize + onnxruntime)"): 200})
    profile = ThreadProfile(samples, {1: 2.0, 2: 2.0, 3: 0.5, 4: 0.0})
    acc = account(profile, rate=100, events=1000)
    parts = acc["parts_ms_per_event"]
    assert parts[LOOP] == pytest.approx(1.5)  # 3/4 of thread 1's 2 s
    assert parts["Redis (profiles, recent, catalog reads)"] == pytest.approx(0.5)
    assert parts["encode (tokenize + onnxruntime)"] == pytest.approx(2.0)
    assert parts[NATIVE] == pytest.approx(0.5)
    assert acc["worker_cpu_ms_per_event"] == pytest.approx(4.5)
    assert sum(parts.values()) == pytest.approx(4.5)
    assert sum(acc["shares"].values()) == pytest.approx(1.0)
    assert "CPU ms/event" in account_table(acc)
    with pytest.raises(ValueError):
        account(profile, rate=100, events=0)


def test_thread_cpu_reads_this_process() -> None:
    import os
    import threading

    cpu = thread_cpu_s(os.getpid())
    assert threading.get_native_id() in cpu and all(v >= 0 for v in cpu.values())


def test_sampler_records_a_live_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through the real py-spy (skipped where it is not installed): a process spinning in a
    function of a file named like the encoder's shows up as encode."""
    import subprocess
    import sys
    import time

    from llmrec_stream.bench.cpu_account import Sampler, pyspy_binary

    binary = pyspy_binary()
    if binary is None:
        pytest.skip("py-spy not installed (set $LLMREC_BENCH_PYSPY)")
    spin = tmp_path / "llmrec_stream" / "encoder" / "spin.py"
    spin.parent.mkdir(parents=True)
    spin.write_text("import time\nend = time.time() + 20\nwhile time.time() < end:\n    pass\n")
    code = "p = 'llmrec_stream/encoder/spin.py'; exec(compile(open(p).read(), p, 'exec'))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)  # noqa: S603
    try:
        time.sleep(0.5)
        sampler = Sampler(proc.pid, binary, rate=100)
        time.sleep(2.0)
        counts = sampler.stop()
    finally:
        proc.kill()
        proc.wait()
    encode = sum(n for (_tid, part), n in counts.samples.items()
                 if part == "encode (tokenize + onnxruntime)")
    assert encode > 0.5 * sum(counts.samples.values()) > 0
    acc = account(counts, 100, 1)  # the spinning thread's CPU, whatever the machine gave it
    spun = acc["parts_ms_per_event"]["encode (tokenize + onnxruntime)"]
    assert spun > 0.9 * acc["worker_cpu_ms_per_event"] > 0
