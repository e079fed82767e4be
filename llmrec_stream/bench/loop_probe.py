"""The event-loop stall probe for ``bench swap``: the meter and the ticker.

``python -m streams.stall_probe worker ...`` (the Faust wiring lives in streams/, which the
library never imports) runs exactly ``python -m streams worker ...`` with `probe` as one more
Faust task beside the agents: a ticker that sleeps ``interval`` on
the worker's event loop and records how late each wake-up came (`StallMeter`). While the loop
runs something without yielding (a micro-batch's synchronous parts, a model swap's first
inference), no tick can fire, so the lateness of the next one is that stall. The worst
lateness of each ``window`` goes to ``$LLMREC_BENCH_STALL_FILE`` as one JSON line with its
wall-clock end, so the bench can line windows up with the swap it caused (same machine, same
clock). The probe lives in the bench, not the worker: production workers pay nothing for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

STALL_FILE_ENV = "LLMREC_BENCH_STALL_FILE"
#: Tick period: short enough to resolve stalls of ~10 ms, long enough to cost the loop little.
INTERVAL_S = 0.005
WINDOW_S = 0.25


@dataclass(frozen=True, slots=True)
class StallWindow:
    """The worst tick lateness seen in one window, ending at wall time ``end_ts``."""

    end_ts: float
    max_stall_ms: float
    ticks: int


@dataclass(slots=True)
class StallMeter:
    """Tick lateness folded into windows; pure (times come in), so it is testable alone."""

    interval: float = INTERVAL_S
    window: float = WINDOW_S
    _expected: float | None = None
    _window_end: float | None = None
    _worst: float = 0.0
    _ticks: int = 0
    closed: list[StallWindow] = field(default_factory=list)

    def tick(self, now: float, wall: float) -> StallWindow | None:
        """One wake-up at monotonic ``now``; returns a window when this tick closes one."""
        if self._expected is None or self._window_end is None:
            self._expected, self._window_end = now + self.interval, now + self.window
            return None
        self._worst = max(self._worst, now - self._expected)
        self._ticks += 1
        self._expected = now + self.interval
        if now < self._window_end:
            return None
        done = StallWindow(wall, 1000 * self._worst, self._ticks)
        self._worst, self._ticks, self._window_end = 0.0, 0, now + self.window
        self.closed.append(done)
        return done


async def probe(out: IO[str], meter: StallMeter | None = None) -> None:
    """Tick forever on the running loop, writing each closed window to ``out``."""
    meter = meter or StallMeter()
    loop = asyncio.get_running_loop()
    meter.tick(loop.time(), time.time())
    while True:
        await asyncio.sleep(meter.interval)
        done = meter.tick(loop.time(), time.time())
        if done is not None:
            out.write(json.dumps({"end_ts": done.end_ts, "max_stall_ms": done.max_stall_ms,
                                  "ticks": done.ticks}) + "\n")
            out.flush()
            meter.closed.clear()  # the file has them; the worker may run for hours


def read_windows(path: Path) -> list[StallWindow]:
    """The windows a probe wrote (a torn last line, from a killed worker, is left out)."""
    out: list[StallWindow] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        out.append(StallWindow(float(obj["end_ts"]), float(obj["max_stall_ms"]),
                               int(obj["ticks"])))
    return out
