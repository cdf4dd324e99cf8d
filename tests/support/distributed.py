"""The distributed deployment as real processes, for contract, protocol and fault tests.

A ``DistributedStack`` is: a private ``redis-server`` on a free port (pub/sub channels are not
scoped by database number, and the channel names are fixed, so test runs must never share a
server), two fresh Postgres databases with unique names (dropped afterwards), and any number of
user-service and order-service processes started with the very command of their Docker image
(read from the Dockerfile's ``CMD``: migrations, then uvicorn). Every part can be stopped and
started again, so fault tests can take Redis, a service or the database away and bring it back.
The processes and databases themselves are ``devstack``'s (the benchmarks start theirs with it
too); this module puts them together as the deployment the tests need.

If Postgres or ``redis-server`` is missing, the tests that need this stack are skipped with one
line; under ``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from contracts import USER_VERIFICATION_RESPONSE_CHANNEL, VERIFY_USER_CHANNEL
from devstack import (
    DEFAULT_ADMIN_DSN,
    RedisOptions,
    ScratchDatabases,
    free_port,
    image_process,
    postgres_problem,
    redis_server_problem,
    venv_path,
)
from devstack.aio import RedisServer, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
USER_DOCKERFILE = ROOT / "user_service" / "Dockerfile"
ORDER_DOCKERFILE = ROOT / "order_service" / "Dockerfile"
# The maintenance database of the local Postgres, where test databases are made and dropped.
ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", DEFAULT_ADMIN_DSN)


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """One clear line: a skip on a developer's machine, a failure in CI."""
    message = f"distributed deployment unavailable: {reason}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def backing_services_problem(admin_dsn: str = ADMIN_DSN) -> str | None:
    """Why the stack cannot run here (Postgres is probed once per test run), or None."""
    return redis_server_problem() or postgres_problem(admin_dsn)


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


# The key of the tags on what the services leave in Redis: the same for every stack's services.
SIGNING_KEY = "signing-" + secrets.token_urlsafe(32)


@dataclass
class DistributedStack:
    """Redis, two databases and the service processes, each part stoppable on its own.

    ``user_services[0]`` and ``order_services[0]`` are the ones the deployment's clients talk
    to; ``add_user_service``/``add_order_service`` start replicas on the same Redis and
    databases (user services share the data folder, hence the signing key)."""

    folder: Path
    redis: RedisServer
    databases: ScratchDatabases  # the user service's, then the order service's
    internal_token: str
    extra_env: dict[str, str] = field(default_factory=dict)
    # ``host:port`` the services reach Postgres through (a fault-injecting proxy), if not direct.
    database_via: str | None = None
    user_services: list[ServerProcess] = field(default_factory=list)
    order_services: list[ServerProcess] = field(default_factory=list)

    @property
    def user_service(self) -> ServerProcess:
        return self.user_services[0]

    @property
    def order_service(self) -> ServerProcess:
        return self.order_services[0]

    @property
    def user_database(self) -> str:
        return self.databases.names[0]

    @property
    def order_database(self) -> str:
        return self.databases.names[1]

    @property
    def user_database_url(self) -> str:
        return self.databases.url(self.user_database)

    @property
    def order_database_url(self) -> str:
        return self.databases.url(self.order_database)

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
            PATH=venv_path(),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=str(self.redis.port),
            INTERNAL_API_TOKEN=self.internal_token,
            REDIS_SIGNING_KEY=SIGNING_KEY,
            DATA_DIR=str(self.folder / "data"),
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def user_env(self, **overrides: str) -> dict[str, str]:
        database_url = self.service_database_url(self.user_database)
        return {**self._common_env(), "DATABASE_URL": database_url, **overrides}

    def order_env(self, **overrides: str) -> dict[str, str]:
        return {
            **self._common_env(),
            "DATABASE_URL": self.service_database_url(self.order_database),
            "USER_SERVICE_URL": self.user_service.url,
            **overrides,
        }

    def new_user_service(self, *, port: int | None = None, **env: str) -> ServerProcess:
        return self._new_service(self.user_services, USER_DOCKERFILE, self.user_env(**env), port)

    def new_order_service(self, *, port: int | None = None, **env: str) -> ServerProcess:
        return self._new_service(self.order_services, ORDER_DOCKERFILE, self.order_env(**env), port)

    def _new_service(
        self, group: list[ServerProcess], dockerfile: Path, env: dict[str, str], port: int | None
    ) -> ServerProcess:
        """A service (not started) as its image runs, named after its folder: user-service-2;
        on ``port``, or a free one."""
        name = f"{dockerfile.parent.name.replace('_', '-')}-{len(group) + 1}"
        service = ServerProcess(
            image_process(
                name,
                dockerfile,
                port=free_port() if port is None else port,
                env=env,
                log_path=self.folder / f"{name}.log",
                cwd=ROOT,
            )
        )
        group.append(service)
        return service

    async def add_user_service(self, *, port: int | None = None, **env: str) -> ServerProcess:
        service = self.new_user_service(port=port, **env)
        await service.start()
        return service

    async def add_order_service(self, *, port: int | None = None, **env: str) -> ServerProcess:
        service = self.new_order_service(port=port, **env)
        await service.start()
        return service

    async def remove(self, service: ServerProcess) -> None:
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
    redis_options: RedisOptions | None = None,
) -> AsyncIterator[DistributedStack]:
    """A running stack: private Redis, fresh databases, the services healthy and subscribed.
    With ``database_via`` (``host:port``), the services reach Postgres through that address."""
    await asyncio.to_thread(require_backing_services)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    databases = ScratchDatabases.unique(ADMIN_DSN, "test", "user_service", "order_service")
    stack = DistributedStack(
        folder=folder,
        redis=RedisServer.on_free_port(folder, **(redis_options or {})),
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
        await asyncio.gather(*(s.wait_ready() for s in stack.user_services[1:]))
        await asyncio.gather(*(s.wait_ready() for s in stack.order_services))
        await stack.wait_for_subscribers()
        yield stack
    finally:
        await stack.close()
        await databases.drop()
