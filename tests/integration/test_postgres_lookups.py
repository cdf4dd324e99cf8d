"""The kit's asyncpg reads on a real Postgres: reads take turns in the order they came, the
wait for a turn has the same deadline as the wait for a connection, and a connection the
server ends under a transaction is a fault naming the server."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from servicekit.errors import DependencyUnavailable
from servicekit.postgres import PostgresLookups
from tests.support.backing import postgres_database
from tests.support.distributed import ADMIN_DSN


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with postgres_database("lookups") as url:
        yield url


async def test_reads_are_served_in_the_order_they_came(database_url: str) -> None:
    """One connection, reads arriving while earlier ones are served: none is passed over by a
    later one (the pool alone gives a freed connection to whichever read asks next)."""
    lookups = PostgresLookups(database_url, application_name="test", size=1)
    await lookups.start()
    came: list[int] = []
    served: list[int] = []

    async def read(n: int) -> None:
        for _ in range(n % 7):  # the reads reach the pool at staggered moments
            await asyncio.sleep(0)
        came.append(n)
        row = await lookups.fetch_row("SELECT $1::int", n)
        assert row is not None
        served.append(row[0])

    try:
        await lookups.fetch("SELECT 1")  # connected
        reads = []
        for n in range(120):
            reads.append(asyncio.create_task(read(n)))
            await asyncio.sleep(0)
        await asyncio.gather(*reads)
    finally:
        await lookups.close()
    assert len(served) == 120
    assert served == came


async def test_a_read_that_gets_no_turn_in_time_is_a_fault_naming_the_server(
    database_url: str,
) -> None:
    lookups = PostgresLookups(database_url, application_name="test", size=1, connect_timeout=0.3)
    await lookups.start()
    try:
        async with lookups.transaction() as holding:  # the one connection, held
            assert await holding.fetch("SELECT 1") == [(1,)]
            with pytest.raises(DependencyUnavailable, match=lookups.address):
                await lookups.fetch("SELECT 1")
        # The turn the refused read waited for was given back: the next read has one.
        assert await lookups.fetch_row("SELECT 2") == (2,)
    finally:
        await lookups.close()


async def test_a_transaction_whose_connection_dies_is_a_fault_naming_the_server(
    database_url: str,
) -> None:
    """The server ends the connection under an open transaction (a restart, a terminated
    backend): the caller gets the kit's fault naming the server (a 503), not the driver's
    complaint that a closed connection's transaction cannot be ended (a 500); the next read
    has a connection again."""
    lookups = PostgresLookups(database_url, application_name="test", size=1)
    await lookups.start()
    admin = await asyncpg.connect(ADMIN_DSN)

    async def read_while_the_server_ends_the_connection() -> None:
        async with lookups.transaction() as doomed:
            [(backend,)] = await doomed.fetch("SELECT pg_backend_pid()")
            await admin.execute("SELECT pg_terminate_backend($1)", backend)
            await doomed.fetch("SELECT 1")

    try:
        with pytest.raises(DependencyUnavailable, match=lookups.address):
            await read_while_the_server_ends_the_connection()
        assert await lookups.fetch_row("SELECT 2") == (2,)
    finally:
        await admin.close()
        await lookups.close()
