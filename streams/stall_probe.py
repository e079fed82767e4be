"""``python -m streams.stall_probe worker ...``: the worker, plus the event-loop stall probe
of ``bench swap`` (`llmrec_stream.bench.loop_probe`) as one more Faust task.

Wiring only, like the rest of streams/: production workers run ``python -m streams`` and pay
nothing for the probe. The ticker appends one JSON line per window to
``$LLMREC_BENCH_STALL_FILE``.
"""

import os

# as streams/__main__.py: before numpy loads OpenBLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from llmrec_stream.bench.loop_probe import STALL_FILE_ENV, probe  # noqa: E402
from streams.agents import app  # noqa: E402


async def stall_probe() -> None:
    with open(os.environ[STALL_FILE_ENV], "a", encoding="utf-8") as out:  # noqa: ASYNC230
        await probe(out)


if __name__ == "__main__":
    app.task(stall_probe)
    app.main()
