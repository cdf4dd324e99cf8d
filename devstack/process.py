"""A server process of our own: one command, its output in a log file, ready once it answers,
stopped with SIGTERM and, past a bound, SIGKILL. Each is stopped by its own pid, never by name.

Blocking code: a caller inside an event loop uses ``devstack.aio.ServerProcess``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar, Self

import httpx

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log: what an error message shows of a process that failed."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass(eq=False)
class ServerProcess:
    """A server on ``127.0.0.1:port``; stoppable and startable again (its log is appended to).

    Ready when ``GET ready_path`` answers 200; a subclass speaking another protocol overrides
    ``is_ready``."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None
    ready_path: str = "/health"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)
    # Seconds between two readiness probes.
    poll_interval: ClassVar[float] = 0.1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The pid of the last launch (the process may have ended since)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was never launched")
        return self.process.pid

    def launch(self) -> None:
        """Start the process and return at once (``wait_ready`` waits for it)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._close_log()
        self._log = self.log_path.open("ab")
        # The argv is the caller's own list (a Dockerfile's CMD, a uvicorn or redis-server line).
        self.process = subprocess.Popen(  # noqa: S603
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def is_ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200
        return False

    def wait_ready(self, within: float = START_TIMEOUT) -> None:
        """Until the server answers; an error with the log's tail if it exits or takes longer
        than ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            if not self.running:
                code = self.process.returncode if self.process is not None else None
                raise RuntimeError(
                    f"{self.name} exited ({code}) before it was ready:\n{tail(self.log_path)}"
                )
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {within}s:\n{tail(self.log_path)}")
            time.sleep(self.poll_interval)

    def start(self, within: float = START_TIMEOUT) -> None:
        self.launch()
        self.wait_ready(within)

    def send(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait_exit(self, within: float = STOP_TIMEOUT) -> int | None:
        """Wait for the process to end on its own; None if it is still running."""
        if self.process is None:
            return None
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, within: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (a graceful shutdown), SIGKILL if it has not ended ``within`` seconds."""
        if self.process is None:
            return None
        self.send(signal.SIGTERM)
        code = self.wait_exit(within)
        if code is None:
            self.kill()
            code = self.process.returncode
        self._close_log()
        return code

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as after a crash."""
        if self.process is None:
            return
        self.send(signal.SIGKILL)
        self.process.wait()
        self._close_log()

    @contextlib.contextmanager
    def serving(
        self, within: float = START_TIMEOUT, stop_within: float = STOP_TIMEOUT
    ) -> Iterator[Self]:
        """Started and ready inside the block, stopped after it (also when it never got ready)."""
        self.launch()
        try:
            self.wait_ready(within)
            yield self
        finally:
            self.stop(stop_within)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
