"""Real backing services for tests that need one part, not a whole stack: a throwaway
Postgres database, a private redis-server. Built on the stack's own primitives."""

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from tests.support.distributed import ADMIN_DSN, PrivateRedis, free_port, unavailable

__all__ = ["PrivateRedis", "free_port", "postgres_database", "private_redis"]


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "test") -> AsyncIterator[str]:
    """A fresh database on the local server; yields its SQLAlchemy URL, drops it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        unavailable(f"Postgres not reachable at {ADMIN_DSN} ({exc!r})")
        raise
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    server = ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{server}/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    with tempfile.TemporaryDirectory(prefix="redis-") as workdir:
        server = PrivateRedis(port=free_port(), workdir=Path(workdir))
        try:
            await server.start()
        except FileNotFoundError as exc:
            unavailable(f"no redis-server binary ({exc})")
        try:
            yield server
        finally:
            await server.stop()
