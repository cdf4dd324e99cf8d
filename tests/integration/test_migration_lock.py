"""Migrations under replicas. Started together on a fresh database, replicas that each migrate
in their startup (``MIGRATE_ON_START=true``) leave one clean schema and no error: the upgrade
holds a Postgres advisory lock. And a replica that only waits (``migrate --wait``, the
Kubernetes Deployments' init container) changes nothing and goes on once the release's
migration has run."""

from __future__ import annotations

import asyncio
import json
import os
import sys
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

from order_service.core.database import MIGRATIONS as ORDER_MIGRATIONS
from order_service.core.database import VERSION_TABLE as ORDER_VERSION_TABLE
from order_service.models import Base as OrderBase
from servicekit.migrations import alembic_config
from tests.support.backing import PrivateRedis, free_port, postgres_database, private_redis
from tests.support.distributed import (
    ORDER_DOCKERFILE,
    ROOT,
    USER_DOCKERFILE,
    ServiceProcess,
    dockerfile_instruction,
    tail,
)
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


def base_env(redis: PrivateRedis, folder: Path) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis.port),
        "INTERNAL_API_TOKEN": TOKEN,
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
async def redis() -> AsyncIterator[PrivateRedis]:
    async with private_redis() as server:
        yield server


async def test_replicas_started_together_migrate_a_fresh_database_once(
    tmp_path: Path, redis: PrivateRedis
) -> None:
    user_image = server_only(USER_DOCKERFILE, tmp_path)
    order_image = server_only(ORDER_DOCKERFILE, tmp_path)
    env = {**base_env(redis, tmp_path), "MIGRATE_ON_START": "true"}
    async with (
        postgres_database("test_lock_users") as user_url,
        postgres_database("test_lock_orders") as order_url,
    ):
        users = [
            ServiceProcess(
                f"user-service-{i}",
                user_image,
                free_port(),
                {**env, "DATABASE_URL": user_url},
                tmp_path / f"user-service-{i}.log",
            )
            for i in range(REPLICAS)
        ]
        orders = [
            ServiceProcess(
                f"order-service-{i}",
                order_image,
                free_port(),
                {**env, "DATABASE_URL": order_url, "USER_SERVICE_URL": users[0].url},
                tmp_path / f"order-service-{i}.log",
            )
            for i in range(REPLICAS)
        ]
        replicas = [*users, *orders]
        try:
            for replica in replicas:
                replica.launch()
            await asyncio.gather(*(replica.wait_healthy() for replica in replicas))
            async with httpx.AsyncClient(timeout=5.0) as http:
                for replica in replicas:
                    ready = await http.get(f"{replica.url}/ready")
                    assert ready.status_code == 200, (replica.name, ready.text)
        finally:
            await asyncio.gather(*(replica.stop() for replica in replicas))
        for replica in replicas:
            log = replica.log_path.read_text()
            assert "Traceback" not in log, f"{replica.name}:\n{tail(replica.log_path)}"
            assert '"ERROR"' not in log, f"{replica.name}:\n{tail(replica.log_path)}"
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
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
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
