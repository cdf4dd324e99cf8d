"""The benchmark's way to serve an app: ``devstack``'s uvicorn process with one settings set
for all (one worker, uvloop, httptools, no uvicorn access log), so the ceiling and the
services are compared on equal terms."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from devstack import ServerProcess, free_port, uvicorn_process

UVICORN_SETTINGS = (
    *("--workers", "1", "--loop", "uvloop", "--http", "httptools"),
    *("--no-access-log", "--log-level", "warning"),
)


@contextlib.contextmanager
def uvicorn_server(
    name: str,
    app: str,
    *,
    code_dir: Path,
    env: Mapping[str, str],
    log_dir: Path,
    ready_path: str = "/health",
    wrapper: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """``uvicorn <app>`` from ``code_dir`` with the shared settings, ready inside the block;
    run by ``wrapper`` (a command line it ends, such as valgrind's) when one is given."""
    server = uvicorn_process(
        name,
        app,
        port=free_port(),
        env={**os.environ, "PYTHONPATH": str(code_dir), **env},
        log_path=log_dir / f"{name}.log",
        cwd=code_dir,
        options=UVICORN_SETTINGS,
        ready_path=ready_path,
    )
    server.argv[:0] = wrapper
    with server.serving(stop_within=10.0):
        yield server
