"""The drain's CPU accounting: stacks to parts, samples to CPU ms per event."""

from __future__ import annotations

from collections import Counter

import pytest

from llmrec_stream.bench.cpu_account import OTHER, account, account_table, parse_raw, part_of

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
        "encode (tokenize + onnxruntime)": 10,
        "Redis (profiles, recent, catalog reads)": 7,  # called by the pipeline: still Redis
        "ranking / top-k / retrieval": 3,  # numpy under the ranker counts as ranking
        "asyncio event loop": 2,
        OTHER: 1,
    })
    assert part_of(["handle (llmrec_stream/pipeline/assembled.py:1)"]) == "pipeline logic (other)"


def test_account_converts_samples_to_ms_per_event() -> None:
    samples = Counter({"encode (tokenize + onnxruntime)": 200, "asyncio event loop": 100})
    acc = account(samples, rate=100, events=1000, worker_cpu_s=3.5)
    parts = acc["parts_ms_per_event"]
    assert parts["encode (tokenize + onnxruntime)"] == pytest.approx(2.0)  # 2 s / 1000
    assert parts["asyncio event loop"] == pytest.approx(1.0)
    assert parts["unsampled (worker CPU - sampled)"] == pytest.approx(0.5)
    assert acc["worker_cpu_ms_per_event"] == pytest.approx(3.5)
    assert sum(acc["shares"].values()) == pytest.approx(1.0)
    assert "CPU ms/event" in account_table(acc)
    with pytest.raises(ValueError):
        account(samples, rate=100, events=0, worker_cpu_s=1.0)


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
    assert counts["encode (tokenize + onnxruntime)"] > 0.5 * sum(counts.values()) > 0
