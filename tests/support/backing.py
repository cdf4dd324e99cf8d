"""Real backing services for tests: throwaway Postgres databases on the machine's server.

Outside CI a missing server skips the tests that need it, with one line saying so; under
``CI=true`` it is a failure.
"""

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc!r}); start it to run these tests"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def async_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "test") -> AsyncIterator[str]:
    """A fresh database; yields its SQLAlchemy URL and drops it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("Postgres at " + POSTGRES_DSN, exc)
        raise
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield async_url(POSTGRES_DSN, name)
    finally:
        admin = await asyncpg.connect(POSTGRES_DSN, timeout=3)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
