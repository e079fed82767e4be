"""One server binary run as a child process that we own, stop, and never leave behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from llmrec_stream.waiting import poll

#: From <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1


class DevStackError(RuntimeError):
    """A dev-stack service failed to start, died, or did not answer in time."""


class ExitedError(DevStackError):
    """The server process exited while we waited for it (a taken port, a bad flag, a crash)."""


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago.

    Another process may take it before the server binds it; callers retry with a new port when
    the server dies at start-up.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port (cheap pre-check before clients,
    which log noisy connection errors while nothing listens)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel SIGTERM the child when its parent dies, even by SIGKILL.

    This is what keeps a crashed or killed test run from leaving brokers and Redis servers behind:
    atexit handlers do not run on SIGKILL. It is Linux only (prctl PR_SET_PDEATHSIG), hence None
    elsewhere. Caveat: the signal fires when the *thread* that spawned the child exits, so start
    the stack from a thread that lives as long as the stack (normally the main thread). libc is
    resolved here, in the parent, so the child only makes two syscalls between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


class ChildProcess:
    """A server binary started directly (no shell, no wrapper), so ``pid`` is the server's own.

    Output goes to ``log_path``; :meth:`log_tail` is quoted in errors. The child runs in its own
    session so that Ctrl-C in a terminal reaches only the parent, which then stops its children in
    order instead of having them race their own shutdown.
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's PID while it is running (or a zombie not yet reaped), else None."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn the binary; returns at once (readiness is the caller's check)."""
        if self._proc is not None:
            raise DevStackError(f"{self.name} is already running (pid {self._proc.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv of a bundled binary
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),  # see the hook for why
            )
        except BaseException:
            self._close_log()
            raise

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def check_alive(self) -> None:
        """Raise a DevStackError with the log tail if the process has exited."""
        if self._proc is None:
            raise DevStackError(f"{self.name} was never started")
        code = self._proc.poll()
        if code is not None:
            raise ExitedError(
                f"{self.name} exited with code {code}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; reaps the PID. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait()
        self._close_log()

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the process output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_until(ready: Callable[[], bool], proc: ChildProcess, timeout: float, what: str) -> None:
    """Poll ``ready`` until it is true; fail fast with the log tail if ``proc`` dies first."""
    if not poll(ready, timeout, interval=0.05, alive=proc.check_alive):
        raise DevStackError(
            f"{proc.name} did not {what} within {timeout:.0f}s; "
            f"last lines of {proc.log_path}:\n{proc.log_tail()}"
        )
