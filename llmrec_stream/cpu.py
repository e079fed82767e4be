"""What the process may use of the machine's CPU."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
