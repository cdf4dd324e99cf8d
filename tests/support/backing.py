"""Real backing services for tests that need one part, not a whole stack: a throwaway
Postgres database, a private redis-server (``devstack``'s), or one skip line without them."""

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Unpack

from devstack import RedisOptions, ScratchDatabases, postgres_problem, redis_server_problem
from devstack.aio import RedisServer
from tests.support.distributed import ADMIN_DSN, unavailable


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "test") -> AsyncIterator[str]:
    """A fresh database on the local server; yields its SQLAlchemy URL, drops it afterwards."""
    problem = await asyncio.to_thread(postgres_problem, ADMIN_DSN)
    if problem is not None:
        unavailable(problem)
    database = ScratchDatabases.unique(ADMIN_DSN, prefix)
    await database.create()
    try:
        yield database.url(database.names[0])
    finally:
        await database.drop()


@contextlib.asynccontextmanager
async def private_redis(**options: Unpack[RedisOptions]) -> AsyncIterator[RedisServer]:
    problem = redis_server_problem()
    if problem is not None:
        unavailable(problem)
    with tempfile.TemporaryDirectory(prefix="redis-") as workdir:
        server = RedisServer.on_free_port(Path(workdir), **options)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
