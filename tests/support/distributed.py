"""The distributed deployment as real processes, for contract, protocol and fault tests.

A ``DistributedStack`` is: a private ``redis-server`` on a free port (pub/sub channels are not
scoped by database number, and the channel names are fixed, so test runs must never share a
server), two fresh Postgres databases with unique names (dropped afterwards), and any number of
user-service and order-service processes started with the very command of their Docker image
(read from the Dockerfile's ``CMD``: migrations, then uvicorn). Every part can be stopped and
started again, so fault tests can take Redis, a service or the database away and bring it back.

If Postgres or ``redis-server`` is missing, the tests that need this stack are skipped with one
line; under ``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from contracts import USER_VERIFICATION_RESPONSE_CHANNEL, VERIFY_USER_CHANNEL

ROOT = Path(__file__).resolve().parents[2]
USER_DOCKERFILE = ROOT / "user_service" / "Dockerfile"
ORDER_DOCKERFILE = ROOT / "order_service" / "Dockerfile"
# The maintenance database of the local Postgres, where test databases are made and dropped.
ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def postgres_address(admin_dsn: str = ADMIN_DSN) -> tuple[str, int]:
    """Host and port of the test Postgres server (what a fault-injecting proxy forwards to)."""
    url = make_url(admin_dsn)
    return url.host or "127.0.0.1", url.port or 5432


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """One clear line: a skip on a developer's machine, a failure in CI."""
    message = f"distributed deployment unavailable: {reason}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _venv_path() -> str:
    """The image has ``python`` and ``uvicorn`` on its PATH; here they come from our venv."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@dataclass
class ServiceProcess:
    """One service process, run with its image's ``CMD``; stoppable and restartable."""

    name: str
    dockerfile: Path
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def launch(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._close_log()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            dockerfile_instruction(self.dockerfile, "CMD"),
            cwd=ROOT,
            env={**self.env, "HOST": "127.0.0.1", "PORT": str(self.port)},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_healthy(self, within: float = START_TIMEOUT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while True:
                if not self.running:
                    code = self.process.returncode if self.process else None
                    raise RuntimeError(
                        f"{self.name} exited ({code}) before answering /health:\n"
                        f"{tail(self.log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        return
                if loop.time() > deadline:
                    raise RuntimeError(f"{self.name} not healthy after {within}s")
                await asyncio.sleep(0.1)

    async def start(self) -> None:
        self.launch()
        await self.wait_healthy()

    def send(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    async def wait_exit(self, within: float = STOP_TIMEOUT) -> int | None:
        """Wait for the process to end on its own; None if it is still running."""
        if self.process is None:
            return None
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            return None

    async def stop(self, within: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (graceful shutdown), SIGKILL if it has not ended ``within`` seconds."""
        if self.process is None:
            return None
        self.send(signal.SIGTERM)
        code = await self.wait_exit(within)
        if code is None:
            await self.kill()
            code = self.process.returncode
        self._close_log()
        return code

    async def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as after a crash."""
        if self.process is None:
            return
        self.send(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class PrivateRedis:
    """A ``redis-server`` of our own on a free port, without persistence."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self) -> Redis:
        """A plain client of this server (tests: watch channels, read keys)."""
        return Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1.0)

    def launch(self) -> None:
        if self.running:
            raise RuntimeError("redis is already running")
        # Our own argument list, not a command line: the empty --save value disables RDB.
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                *("--logfile", str(self.workdir / "redis.log")),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self, within: float = 10.0) -> None:
        self.launch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with self.client() as client:
            while True:
                with contextlib.suppress(OSError, Exception):
                    if await client.ping():
                        return
                if not self.running or loop.time() > deadline:
                    raise RuntimeError(
                        f"redis-server on port {self.port} did not start:\n"
                        f"{tail(self.workdir / 'redis.log')}"
                    )
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


@dataclass
class ScratchDatabases:
    """Two databases with unique names on the local Postgres, dropped by ``drop``."""

    admin_dsn: str
    user_database: str
    order_database: str

    @classmethod
    def unique(cls, admin_dsn: str = ADMIN_DSN) -> ScratchDatabases:
        run = uuid.uuid4().hex[:10]
        return cls(admin_dsn, f"test_{run}_user_service", f"test_{run}_order_service")

    def url(self, database: str, *, via: str | None = None) -> str:
        """The SQLAlchemy async URL of one of our databases, on the admin DSN's server, or
        through ``via`` (``host:port`` of a proxy in front of that server)."""
        server = self.admin_dsn.split("://", 1)[1].rsplit("/", 1)[0]
        if via is not None:
            server = f"{server.rpartition('@')[0]}@{via}" if "@" in server else via
        return f"postgresql+asyncpg://{server}/{database}"

    @property
    def user_url(self) -> str:
        return self.url(self.user_database)

    @property
    def order_url(self) -> str:
        return self.url(self.order_database)

    async def create(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn, timeout=5)
        try:
            for name in (self.user_database, self.order_database):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn, timeout=5)
        try:
            for name in (self.user_database, self.order_database):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@functools.cache
def backing_services_problem(admin_dsn: str = ADMIN_DSN) -> str | None:
    """Why the stack cannot run here (checked once per test run), or None."""
    if shutil.which("redis-server") is None:
        return "no redis-server binary on PATH (apt-get install redis-server)"

    async def probe() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=3)
        await conn.close()

    try:
        # A thread of its own: callers may be inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"Postgres not reachable at {admin_dsn} ({type(exc).__name__}: {exc})"
    return None


def needs_backing_services(item: pytest.Item) -> bool:
    """Contract tests on the distributed deployment, and tests on an integration stack."""
    callspec = getattr(item, "callspec", None)
    on_distributed = callspec is not None and callspec.params.get("deployment") == "distributed"
    return on_distributed or "stack" in getattr(item, "fixturenames", ())


def require_backing_services() -> None:
    """Skip (in CI: fail) when the stack cannot run. Called from a ``pytest_runtest_setup``
    hook, not a fixture, so every skipped test reports this one place: one summary line."""
    problem = backing_services_problem()
    if problem is not None:
        unavailable(problem)


@dataclass
class DistributedStack:
    """Redis, two databases and the service processes, each part stoppable on its own.

    ``user_services[0]`` and ``order_services[0]`` are the ones the deployment's clients talk
    to; ``add_user_service``/``add_order_service`` start replicas on the same Redis and
    databases (user services share the data folder, hence the signing key)."""

    folder: Path
    redis: PrivateRedis
    databases: ScratchDatabases
    internal_token: str
    extra_env: dict[str, str] = field(default_factory=dict)
    # ``host:port`` the services reach Postgres through (a fault-injecting proxy), if not direct.
    database_via: str | None = None
    user_services: list[ServiceProcess] = field(default_factory=list)
    order_services: list[ServiceProcess] = field(default_factory=list)

    @property
    def user_service(self) -> ServiceProcess:
        return self.user_services[0]

    @property
    def order_service(self) -> ServiceProcess:
        return self.order_services[0]

    @property
    def user_database_url(self) -> str:
        return self.databases.user_url

    @property
    def order_database_url(self) -> str:
        return self.databases.order_url

    def service_database_url(self, database: str) -> str:
        """The URL a service is given: through ``database_via`` when set."""
        return self.databases.url(database, via=self.database_via)

    def _common_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # Nothing from the caller's environment may change what the services configure.
            if key in {"HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "PYTHONHASHSEED"}
        }
        env.update(
            PATH=_venv_path(),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=str(self.redis.port),
            INTERNAL_API_TOKEN=self.internal_token,
            DATA_DIR=str(self.folder / "data"),
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def user_env(self, **overrides: str) -> dict[str, str]:
        database_url = self.service_database_url(self.databases.user_database)
        return {**self._common_env(), "DATABASE_URL": database_url, **overrides}

    def order_env(self, **overrides: str) -> dict[str, str]:
        return {
            **self._common_env(),
            "DATABASE_URL": self.service_database_url(self.databases.order_database),
            "USER_SERVICE_URL": self.user_service.url,
            **overrides,
        }

    def new_user_service(self, **env: str) -> ServiceProcess:
        index = len(self.user_services) + 1
        service = ServiceProcess(
            name=f"user-service-{index}",
            dockerfile=USER_DOCKERFILE,
            port=free_port(),
            env=self.user_env(**env),
            log_path=self.folder / f"user-service-{index}.log",
        )
        self.user_services.append(service)
        return service

    def new_order_service(self, **env: str) -> ServiceProcess:
        index = len(self.order_services) + 1
        service = ServiceProcess(
            name=f"order-service-{index}",
            dockerfile=ORDER_DOCKERFILE,
            port=free_port(),
            env=self.order_env(**env),
            log_path=self.folder / f"order-service-{index}.log",
        )
        self.order_services.append(service)
        return service

    async def add_user_service(self, **env: str) -> ServiceProcess:
        service = self.new_user_service(**env)
        await service.start()
        return service

    async def add_order_service(self, **env: str) -> ServiceProcess:
        service = self.new_order_service(**env)
        await service.start()
        return service

    async def remove(self, service: ServiceProcess) -> None:
        await service.stop()
        for group in (self.user_services, self.order_services):
            if service in group:
                group.remove(service)

    async def stop_redis(self) -> None:
        await self.redis.stop()

    async def start_redis(self) -> None:
        """Start Redis again (same port, empty) and wait until every running service has
        subscribed again, so that the next request sees a working bus."""
        await self.redis.start()
        await self.wait_for_subscribers()

    async def wait_for_subscribers(self, within: float = 15.0) -> None:
        wanted = {
            VERIFY_USER_CHANNEL: sum(s.running for s in self.user_services),
            USER_VERIFICATION_RESPONSE_CHANNEL: sum(s.running for s in self.order_services),
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with self.redis.client() as client:
            while True:
                counts = dict(await client.pubsub_numsub(*wanted))
                seen = {_text(channel): int(n) for channel, n in counts.items()}
                if all(seen.get(channel, 0) >= n for channel, n in wanted.items()):
                    return
                if loop.time() > deadline:
                    raise RuntimeError(f"subscribers {seen}, expected {wanted}")
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        for service in [*self.order_services, *self.user_services]:
            with contextlib.suppress(Exception):
                await service.stop()
        await self.redis.stop()


@contextlib.asynccontextmanager
async def distributed_stack(
    folder: Path,
    *,
    internal_token: str,
    extra_env: Mapping[str, str] | None = None,
    user_services: int = 1,
    order_services: int = 1,
    database_via: str | None = None,
) -> AsyncIterator[DistributedStack]:
    """A running stack: private Redis, fresh databases, the services healthy and subscribed.
    With ``database_via`` (``host:port``), the services reach Postgres through that address."""
    await asyncio.to_thread(require_backing_services)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    databases = ScratchDatabases.unique()
    stack = DistributedStack(
        folder=folder,
        redis=PrivateRedis(port=free_port(), workdir=folder),
        databases=databases,
        internal_token=internal_token,
        extra_env=dict(extra_env or {}),
        database_via=database_via,
    )
    await databases.create()
    try:
        await stack.redis.start()
        # The user service first: its migration and dev key are done before replicas race.
        await stack.add_user_service()
        for _ in range(user_services - 1):
            stack.new_user_service().launch()
        for _ in range(order_services):
            stack.new_order_service().launch()
        await asyncio.gather(*(s.wait_healthy() for s in stack.user_services[1:]))
        await asyncio.gather(*(s.wait_healthy() for s in stack.order_services))
        await stack.wait_for_subscribers()
        yield stack
    finally:
        await stack.close()
        await databases.drop()
