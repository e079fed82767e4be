"""A Faust worker as a child process, for the demo, tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from llmrec_stream.devstack.process import _die_with_parent_hook
from llmrec_stream.waiting import wait_until


class WorkerProcess:
    """``python -m streams worker`` with the given environment; logs to a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, worker_id: str = "w-0") -> None:
        self.env = {**os.environ, **env, "LLMREC_WORKER_ID": worker_id}
        self.log_path = log_path
        self.worker_id = worker_id
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "streams", "worker", "--without-web", "-l", "info"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - only sets the death signal
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, as fault tests need it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (Faust commits and leaves the group), SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def wait_until(
        self, check: Callable[[], bool], timeout: float, what: str, *, supervised: bool = False
    ) -> None:
        """Poll ``check`` until true; RuntimeError if the worker dies, TimeoutError after
        ``timeout`` seconds, both with the tail of its log. ``supervised``: something else
        restarts the worker when it exits (a supervisor thread, as a container's restart
        policy would), so an exit is part of the scenario and only the deadline fails it."""
        def alive() -> None:
            if not supervised and not self.alive:
                raise RuntimeError(f"the worker died waiting for {what}:\n{self.log_tail()}")

        wait_until(check, timeout, what, interval=0.2, alive=alive, detail=self.log_tail)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
