"""The kit's asyncpg reads on a real Postgres: reads take turns in the order they came, and the
wait for a turn has the same deadline as the wait for a connection."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from servicekit.errors import DependencyUnavailable
from servicekit.postgres import PostgresLookups
from tests.support.backing import postgres_database


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
