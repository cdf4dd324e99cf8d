"""Migrations under replicas. Started together on a fresh database, replicas that each migrate
in their startup (``MIGRATE_ON_START=true``) leave one clean schema and no error: the upgrade
holds a Postgres advisory lock. And a replica that only waits (``migrate --wait``, the
Kubernetes Deployments' init container) changes nothing and goes on once the release's
migration has run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from devstack import dockerfile_instruction, free_port, image_process, tail, venv_path
from devstack.aio import RedisServer, ServerProcess
from order_service.core.database import MIGRATIONS as ORDER_MIGRATIONS
from order_service.core.database import VERSION_TABLE as ORDER_VERSION_TABLE
from order_service.models import Base as OrderBase
from servicekit.migrations import alembic_config
from tests.support.backing import postgres_database, private_redis
from tests.support.distributed import ORDER_DOCKERFILE, ROOT, USER_DOCKERFILE
from user_service.core.database import MIGRATIONS as USER_MIGRATIONS
from user_service.core.database import VERSION_TABLE as USER_VERSION_TABLE
from user_service.models import metadata as user_metadata

TOKEN = "migration-lock-test-internal-token"
REPLICAS = 2


def server_only(dockerfile: Path, folder: Path) -> Path:
    """A Dockerfile whose CMD is the image's without its migration step: the server alone,
    as a replica runs when nothing migrated before it."""
    [shell, flag, command] = dockerfile_instruction(dockerfile, "CMD")
    migrate, _, server = command.partition(" && ")
    assert migrate.startswith("python -m "), command
    assert server.startswith("exec uvicorn "), command
    path = folder / f"{dockerfile.parent.name}.server-only.Dockerfile"
    path.write_text(f"CMD {json.dumps([shell, flag, server])}\n")
    return path


def replica(name: str, image: Path, env: dict[str, str], folder: Path) -> ServerProcess:
    """One replica (not started) as ``image`` runs it, on a free port."""
    return ServerProcess(
        image_process(
            name, image, port=free_port(), env=env, log_path=folder / f"{name}.log", cwd=ROOT
        )
    )


def base_env(redis: RedisServer, folder: Path) -> dict[str, str]:
    return {
        "PATH": venv_path(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis.port),
        "INTERNAL_API_TOKEN": TOKEN,
        "REDIS_SIGNING_KEY": "signing-key-of-the-migration-lock-test",
        "DATA_DIR": str(folder / "data"),
        "LOG_LEVEL": "WARNING",
    }


def schema_problems(connection: Connection, metadata: MetaData, version_table: str) -> list[str]:
    """What differs between the models and the database, beyond the version table."""
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return [
        repr(diff)
        for diff in compare_metadata(context, metadata)
        if version_table not in repr(diff)
    ]


async def check_schema(url: str, migrations: Path, version_table: str, metadata: MetaData) -> None:
    heads = ScriptDirectory.from_config(alembic_config(migrations, version_table)).get_heads()
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            problems = await conn.run_sync(schema_problems, metadata, version_table)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        raw = await asyncpg.connect(dsn, timeout=5)
        try:
            versions = await raw.fetch(f"SELECT version_num FROM {version_table}")  # noqa: S608
        finally:
            await raw.close()
    finally:
        await engine.dispose()
    assert [row["version_num"] for row in versions] == heads
    assert problems == []


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    async with private_redis() as server:
        yield server


async def test_replicas_started_together_migrate_a_fresh_database_once(
    tmp_path: Path, redis: RedisServer
) -> None:
    user_image = server_only(USER_DOCKERFILE, tmp_path)
    order_image = server_only(ORDER_DOCKERFILE, tmp_path)
    env = {**base_env(redis, tmp_path), "MIGRATE_ON_START": "true"}
    async with (
        postgres_database("test_lock_users") as user_url,
        postgres_database("test_lock_orders") as order_url,
    ):
        users = [
            replica(f"user-service-{i}", user_image, {**env, "DATABASE_URL": user_url}, tmp_path)
            for i in range(REPLICAS)
        ]
        order_env = {**env, "DATABASE_URL": order_url, "USER_SERVICE_URL": users[0].url}
        orders = [
            replica(f"order-service-{i}", order_image, order_env, tmp_path) for i in range(REPLICAS)
        ]
        replicas = [*users, *orders]
        try:
            for server in replicas:
                server.launch()
            await asyncio.gather(*(server.wait_ready() for server in replicas))
            async with httpx.AsyncClient(timeout=5.0) as http:
                for server in replicas:
                    ready = await http.get(f"{server.url}/ready")
                    assert ready.status_code == 200, (server.name, ready.text)
        finally:
            await asyncio.gather(*(server.stop() for server in replicas))
        for server in replicas:
            log = server.log_path.read_text()
            assert "Traceback" not in log, f"{server.name}:\n{tail(server.log_path)}"
            assert '"ERROR"' not in log, f"{server.name}:\n{tail(server.log_path)}"
        await check_schema(user_url, USER_MIGRATIONS, USER_VERSION_TABLE, user_metadata)
        await check_schema(order_url, ORDER_MIGRATIONS, ORDER_VERSION_TABLE, OrderBase.metadata)


async def migrate_command(url: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "python",
        "-m",
        "user_service.migrate",
        *args,
        cwd=ROOT,
        env={
            "PATH": venv_path(),
            "DATABASE_URL": url,
            "INTERNAL_API_TOKEN": TOKEN,
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_waiting_replica_changes_nothing_and_goes_on_once_the_release_migrated() -> None:
    async with postgres_database("test_wait") as url:
        code, _, err = await finished(await migrate_command(url, "--wait", "1"))
        assert code == 1
        [line] = err.strip().splitlines()
        assert line.startswith("user_service: schema not at head after 1 s (database: none;")

        waiting = await migrate_command(url, "--wait", "100")
        code, out, err = await finished(await migrate_command(url))
        assert (code, out.strip()) == (0, "user_service: migrations applied"), err
        code, out, err = await finished(waiting)
        assert (code, out.strip()) == (0, "user_service: schema at head"), err
        await check_schema(url, USER_MIGRATIONS, USER_VERSION_TABLE, user_metadata)
