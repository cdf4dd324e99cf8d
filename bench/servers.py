"""Real server processes for the benchmarks: uvicorn apps, a private Redis, scratch databases.

Every uvicorn process gets the same settings (one worker, uvloop, httptools, no uvicorn access
log), so the ceiling and the services are compared on equal terms. Everything started here is
stopped here, by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

UVICORN_SETTINGS = (
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def _stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def uvicorn_server(
    name: str,
    app: str,
    *,
    code_dir: Path,
    env: Mapping[str, str],
    log_dir: Path,
    ready_path: str = "/health",
    port: int | None = None,
) -> Iterator[Server]:
    """``uvicorn <app>`` from ``code_dir`` with the shared settings; waits until it answers."""
    port = port or free_port()
    log_path = log_dir / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *UVICORN_SETTINGS,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=code_dir,
            env={**os.environ, "PYTHONPATH": str(code_dir), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Server(name, process, port, log_path)
        try:
            _wait_until_ready(server, ready_path)
            yield server
        finally:
            _stop(process)


def _wait_until_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{_tail(server.log_path)}")
        try:
            if httpx.get(server.url + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not become ready:\n{_tail(server.log_path)}")


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[int]:
    """A private, non-persistent Redis on a free port: the shared one is never touched."""
    port = free_port()
    with (log_dir / "redis.log").open("wb") as log:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            yield port
        finally:
            _stop(process)


@contextlib.contextmanager
def scratch_databases(admin_dsn: str, names: list[str]) -> Iterator[None]:
    """Create the databases (dropping leftovers of an interrupted run), drop them at the end."""

    async def run(sql: list[str]) -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()

    def drop_all() -> list[str]:
        return [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names]

    asyncio.run(run([*drop_all(), *(f'CREATE DATABASE "{name}"' for name in names)]))
    try:
        yield
    finally:
        asyncio.run(run(drop_all()))
