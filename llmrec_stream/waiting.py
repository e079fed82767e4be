"""The one wait-until loop: poll a condition until it holds, a deadline passes, or the thing
being waited on dies.

The embedded services, the worker processes, the Redis cluster and the tests all wait this
way; each keeps its own error (a `DevStackError` with a log tail, a ``TimeoutError``...), so
`poll` only says whether the condition came true, and `wait_until` is the common case.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def poll(
    check: Callable[[], object],
    timeout: float,
    *,
    interval: float = 0.1,
    alive: Callable[[], None] | None = None,
) -> bool:
    """True as soon as ``check()`` is truthy; False once ``timeout`` seconds passed without it.

    ``alive`` runs before each check and raises if what is waited on died (fail fast instead
    of waiting out the deadline). ``check`` runs at least once, also with a zero timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    alive: Callable[[], None] | None = None,
    detail: Callable[[], str] | None = None,
) -> None:
    """`poll`, then ``TimeoutError`` naming ``what`` (and ``detail()``, e.g. a log tail)."""
    if poll(check, timeout, interval=interval, alive=alive):
        return
    extra = f":\n{detail()}" if detail is not None else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
