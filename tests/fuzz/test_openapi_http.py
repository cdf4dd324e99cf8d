"""schemathesis over HTTP against running servers: the single process (``uvicorn
app.main:app``) and both services of the distributed deployment (the processes the contract
tests use). Every phase (examples, coverage, fuzzing, stateful) and every check, with a valid
token (``http_hooks.py``: the hooks, and why each exists). Any failure fails the test, with
schemathesis's report in the message.

Bounded for ``make test``: ``FUZZ_HTTP_EXAMPLES`` examples per operation (default 10), a
fixed seed (``FUZZ_HTTP_SEED``, default 1), one worker. Run longer with e.g.
``FUZZ_HTTP_EXAMPLES=200 FUZZ_HTTP_SEED=7 .venv/bin/pytest tests/fuzz/test_openapi_http.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack import free_port
from devstack.service import uvicorn_process
from tests.support.api import PASSWORD
from tests.support.deployments import Deployment
from tests.support.distributed import ROOT

EXAMPLES = os.environ.get("FUZZ_HTTP_EXAMPLES", "10")
SEED = os.environ.get("FUZZ_HTTP_SEED", "1")
ST = Path(sys.executable).with_name("st")


@dataclass(frozen=True)
class Server:
    url: str  # what is fuzzed
    users_url: str  # where accounts are made
    internal_token: str


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The single process as ``make run`` starts it, on a fresh data folder."""
    folder = tmp_path_factory.mktemp("single-process-http")
    env = {key: value for key, value in os.environ.items() if key in {"HOME", "LANG", "PATH"}} | {
        "DATA_DIR": str(folder / "data"),
        "LOG_LEVEL": "WARNING",
    }
    server = uvicorn_process(
        "single-process",
        "app.main:app",
        port=free_port(),
        env=env,
        log_path=folder / "server.log",
        cwd=ROOT,
        options=("--no-access-log",),
    )
    with server.serving():
        # The internal endpoint's credential is random and never leaves the process.
        yield Server(server.url, server.url, internal_token="unknown")


async def log_in_fresh(users_url: str) -> str:
    email = f"fuzz-http-{uuid.uuid4().hex[:12]}@example.com"
    async with httpx.AsyncClient(base_url=users_url, timeout=10.0) as client:
        registered = await client.post(
            "/users", json={"email": email, "password": PASSWORD, "full_name": "Fuzz"}
        )
        assert registered.status_code == 201, registered.text
        logged_in = await client.post("/auth/token", data={"username": email, "password": PASSWORD})
        assert logged_in.status_code == 200, logged_in.text
        token: str = logged_in.json()["access_token"]
        return token


async def run_schemathesis(server: Server, folder: Path) -> None:
    token = await log_in_fresh(server.users_url)
    env = {
        **{key: os.environ[key] for key in ("HOME", "LANG", "PATH") if key in os.environ},
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.fuzz.http_hooks",
        "FUZZ_USERS_URL": server.users_url,
        "FUZZ_TOKEN": token,
        "FUZZ_INTERNAL_TOKEN": server.internal_token,
    }
    argv = [
        str(ST),
        "run",
        f"{server.url}/openapi.json",
        "--phases=examples,coverage,fuzzing,stateful",
        "--checks=all",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=10",
        "--no-color",
    ]
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "failures" not in report.splitlines()[-1], report


async def test_schemathesis_over_http_single_process(
    single_process: Server, tmp_path: Path
) -> None:
    await run_schemathesis(single_process, tmp_path)


@pytest.mark.parametrize("deployment", ["distributed"], indirect=True)
@pytest.mark.parametrize("service", ["user_service", "order_service"])
async def test_schemathesis_over_http_distributed(
    deployment: Deployment, service: str, tmp_path: Path
) -> None:
    users = str(deployment.users.base_url).rstrip("/")
    url = users if service == "user_service" else str(deployment.orders.base_url).rstrip("/")
    await run_schemathesis(Server(url, users, deployment.internal_token), tmp_path)


async def test_a_1_mib_header_is_431_from_the_single_process(single_process: Server) -> None:
    async with httpx.AsyncClient(base_url=single_process.url, timeout=10.0) as client:
        response = await client.get("/health", headers={"X-Padding": "p" * (1 << 20)})
    assert response.status_code == 431, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "request_header_fields_too_large"
    assert body["status"] == 431
