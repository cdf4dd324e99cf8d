"""The order reads' plans on Postgres: an order's lines are found by index, never by reading
every line, even in the plan Postgres keeps for a prepared statement and before the tables
were ever analyzed (a fresh database that just took a burst of orders)."""

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects import postgresql

from order_service.core.database import MIGRATIONS, VERSION_TABLE
from order_service.domain import OrderData, OrderLineData
from order_service.repositories import order_repository
from order_service.repositories.order_repository import BuiltRead, insert_orders
from servicekit.clock import utc_now
from servicekit.database import create_engine
from servicekit.migrations import migrate
from tests.support.backing import postgres_database

USERS = 5
ORDERS_EACH = 1000


def _orders(user_id: uuid.UUID) -> list[OrderData]:
    now = utc_now()
    return [
        OrderData(
            id=uuid.uuid4(),
            user_id=user_id,
            status="pending",
            currency="EUR",
            total=Decimal("25.0000"),
            created_at=now - dt.timedelta(milliseconds=n),
            updated_at=now,
            lines=(
                OrderLineData(0, "A", 1, Decimal("12.5")),
                OrderLineData(1, "B", 1, Decimal("12.5")),
            ),
        )
        for n in range(ORDERS_EACH)
    ]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _generic_plan(
    connection: asyncpg.Connection, query: Select[Any], params: dict[str, Any]
) -> dict[str, Any]:
    compiled = query.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]
    values = {**compiled.params, **params}
    order = compiled.positiontup or []
    await connection.execute("SET plan_cache_mode = force_generic_plan")
    statement = await connection.prepare(f"EXPLAIN (FORMAT JSON) {compiled}")
    raw = await statement.fetchval(*(values[name] for name in order))
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan


async def test_lines_are_looked_up_by_index_in_a_generic_plan_without_statistics() -> None:
    async with postgres_database("plans") as url:
        engine = create_engine(url, application_name="test")
        try:
            await migrate(engine, MIGRATIONS, VERSION_TABLE)
            users = [uuid.uuid4() for _ in range(USERS)]
            async with engine.begin() as conn:
                for user_id in users:
                    await insert_orders(conn, _orders(user_id))
        finally:
            await engine.dispose()
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
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
            for name, (read, params) in reads.items():
                plan = await _generic_plan(connection, read.for_dialect("postgresql"), params)
                scanned = [
                    node["Relation Name"]
                    for node in _nodes(plan)
                    if node["Node Type"] == "Seq Scan"
                ]
                assert scanned == [], f"{name}: {scanned}"
        finally:
            await connection.close()
