"""The engine on a real Postgres: a pooled connection the server has closed is never used."""

import asyncio
import uuid

import asyncpg
from sqlalchemy import text

from servicekit.database import create_engine
from tests.support.backing import postgres_database
from tests.support.distributed import ADMIN_DSN


async def test_connections_closed_by_the_server_are_replaced_without_an_error() -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    async with postgres_database("engine") as url:
        engine = create_engine(url, application_name=name, pool_size=4, pre_ping=False)
        try:
            # Fill the pool with idle connections, then have the server end all of them,
            # as a restart or pg_terminate_backend would.
            async def one() -> int:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT pg_sleep(0.05)"))
                    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

            before = set(await asyncio.gather(*(one() for _ in range(4))))
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                ended = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = $1",
                    name,
                )
            finally:
                await admin.close()
            assert ended == len(before)
            await asyncio.sleep(0.2)  # let the driver read the closed sockets
            after = set(await asyncio.gather(*(one() for _ in range(4))))
            assert not before & after  # every statement ran on a fresh connection
        finally:
            await engine.dispose()
