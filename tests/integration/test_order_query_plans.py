"""The order reads' plans on Postgres: a page of orders is read from the user's index, newest
first, and an order's lines are found by index, never by reading every order or every line,
in the plan a pooled connection runs for the prepared statement after a few executions, and
before the tables were ever analyzed (a fresh database that just took a burst of orders)."""

import uuid
from typing import Any

import asyncpg

from devstack.postgres import prepared_plan
from order_service.core.database import MIGRATIONS, VERSION_TABLE
from order_service.repositories import order_repository
from order_service.repositories.order_repository import BuiltRead
from servicekit.clock import utc_now
from servicekit.database import create_engine
from servicekit.migrations import migrate
from servicekit.postgres import SESSION_SETTINGS, AsyncpgStatement
from tests.support.backing import postgres_database

# Orders enough for a table past min_parallel_table_scan_size (8 MB by default): from there
# the planner may read the whole table in parallel, and a plan made without a page's size
# (the generic plan of a prepared statement) does (docs/benchmarks.md, "A list that fell").
USERS = 8
ORDERS_EACH = 12_500

_LOAD = [
    # Written by Postgres itself: a hundred thousand orders in a second.
    """
    INSERT INTO customer_order (id, user_id, status, currency, total, created_at, updated_at)
    SELECT gen_random_uuid(), u.id, 'pending', 'EUR', 25, now() - n * interval '1 ms', now()
    FROM unnest($1::uuid[]) AS u (id), generate_series(1, $2) AS n
    """,
    """
    INSERT INTO order_line (order_id, position, sku, quantity, unit_price)
    SELECT o.id, p, 'A', 1, 12.5 FROM customer_order AS o, generate_series(0, 1) AS p
    """,
]


async def test_pages_and_lines_are_read_by_index_in_a_prepared_plan_without_statistics() -> None:
    async with postgres_database("plans") as url:
        engine = create_engine(url, application_name="test")
        try:
            await migrate(engine, MIGRATIONS, VERSION_TABLE)
        finally:
            await engine.dispose()
        users = [uuid.uuid4() for _ in range(USERS)]
        # A session as the asyncpg reads open them (servicekit.postgres.PostgresLookups).
        connection = await asyncpg.connect(
            url.replace("postgresql+asyncpg", "postgresql"),
            server_settings=SESSION_SETTINGS,
        )
        try:
            for table in ("customer_order", "order_line"):
                # Never analyzed, as in the minute after a burst, before autovacuum comes.
                await connection.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            await connection.execute(_LOAD[0], users, ORDERS_EACH)
            await connection.execute(_LOAD[1])
            reads: dict[str, tuple[BuiltRead, dict[str, Any]]] = {
                "first page": (
                    order_repository.FIRST_PAGE,
                    {"user_id": users[0], "limit": 21},
                ),
                "next page": (
                    order_repository.NEXT_PAGE,
                    {
                        "user_id": users[0],
                        "limit": 21,
                        "before_at": utc_now(),
                        "before_id": uuid.uuid4(),
                    },
                ),
                "one order": (
                    order_repository.ONE_ORDER,
                    {"user_id": users[0], "order_id": uuid.uuid4()},
                ),
            }
            # The reads of the distributed deployment: rendered by Postgres, on asyncpg.
            for name, (read, params) in reads.items():
                statement = AsyncpgStatement(read.rendered)
                nodes = await prepared_plan(connection, statement.sql, statement.args(**params))
                assert [n for n in nodes if n.startswith("Seq Scan")] == [], (name, nodes)
        finally:
            await connection.close()
        # The one read of orders the engine makes on Postgres (a cancellation, a replayed
        # key), in a session as the engine opens it.
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            read, params = reads["one order"]
            statement = AsyncpgStatement(read.for_dialect("postgresql"))
            nodes = await prepared_plan(connection, statement.sql, statement.args(**params))
            assert [n for n in nodes if n.startswith("Seq Scan")] == [], nodes
        finally:
            await connection.close()
