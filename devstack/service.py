"""A service as a process: the way its image starts it (the Dockerfile's ``CMD``: migrations,
then uvicorn), or a bare ``uvicorn <app>`` with options the caller chooses."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.process import ServerProcess


def dockerfile_instruction(dockerfile: Path, instruction: str) -> list[str]:
    """The exec-form (JSON array) argument list of ``CMD`` or of ``HEALTHCHECK ... CMD``."""
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.strip()
        if not words.startswith(f"{instruction} "):
            continue
        argv = words[len(instruction) :].strip()
        if instruction == "HEALTHCHECK":
            argv = argv.partition(" CMD ")[2]
        parsed = json.loads(argv)
        if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
            raise ValueError(f"{dockerfile}: {instruction} is not in exec form")
        return parsed
    raise ValueError(f"{dockerfile}: no {instruction}")


def venv_path() -> str:
    """``PATH`` with this interpreter's folder first: an image has ``python`` and ``uvicorn``
    on its PATH; here they come from the virtual environment running us."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def image_process(
    name: str, dockerfile: Path, *, port: int, env: Mapping[str, str], log_path: Path, cwd: Path
) -> ServerProcess:
    """The image's ``CMD`` run from ``cwd`` (the build context) with ``env`` and nothing else
    from ours but ``HOST`` and ``PORT``, which the image sets."""
    return ServerProcess(
        name=name,
        argv=dockerfile_instruction(dockerfile, "CMD"),
        port=port,
        env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
        log_path=log_path,
        cwd=cwd,
    )


def uvicorn_process(
    name: str,
    app: str,
    *,
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path,
    options: Sequence[str] = (),
    ready_path: str = "/health",
) -> ServerProcess:
    """``python -m uvicorn <app>`` with this interpreter, from ``cwd``, with ``options``."""
    return ServerProcess(
        name=name,
        argv=[
            *(sys.executable, "-m", "uvicorn", app),
            *("--host", "127.0.0.1", "--port", str(port)),
            *options,
        ],
        port=port,
        env=dict(env),
        log_path=log_path,
        cwd=cwd,
        ready_path=ready_path,
    )
