"""The data of ``--scale``: a bulk load (COPY) into the distributed deployment's own databases,
then ``VACUUM ANALYZE``, then the plans of the reads as the services run them.

What is loaded, as a shop that has run for a year would hold it:
- users, all with one precomputed argon2id hash (the service's parameters): only the first
  ``users_with_orders`` have orders, and those unevenly (a few users have thousands, most a
  handful);
- orders of two lines each, spread over the past year, except ``recent_orders`` placed in the
  last day, each with its live ``Idempotency-Key`` record (older records are what the
  service's purge has already removed);
- the bench accounts get ``BENCH_HISTORY`` orders each, spread over the year, among them.

The load runs with ``session_replication_role = replica``, as a restore does: the rows are
consistent by construction, so neither foreign-key checks nor the user service's change
notifications (for users nobody has seen yet) are needed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.sql import ClauseElement

from devstack.postgres import prepared_plan
from servicekit.postgres import SESSION_SETTINGS, AsyncpgStatement

CHUNK = 50_000
BENCH_HISTORY = 10
SKUS = tuple(f"SKU-{n:04d}" for n in range(500))
PRICES = tuple(Decimal(cents) / 100 for cents in (99, 250, 499, 1250, 1999, 4900, 12900))
YEAR_S = 365 * 86_400.0
DAY_S = 86_400.0
IDEMPOTENCY_TTL = dt.timedelta(hours=24)  # the order service's default


@dataclass(frozen=True)
class Sizes:
    users: int
    users_with_orders: int
    orders: int
    recent_orders: int


FULL = Sizes(users=200_000, users_with_orders=100_000, orders=1_000_000, recent_orders=200_000)
QUICK = Sizes(users=20_000, users_with_orders=10_000, orders=100_000, recent_orders=20_000)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _loading_connection(dsn: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(dsn, timeout=10)
    await connection.execute("SET session_replication_role = replica")
    await connection.execute("SET synchronous_commit = off")
    return connection


async def load_users(dsn: str, user_ids: Sequence[uuid.UUID], password_hash: str) -> int:
    now = dt.datetime.now(dt.UTC)
    rows = (
        (
            user_id,
            f"scale-{n:07d}@example.com",
            f"Scale User {n}",
            password_hash,
            True,
            1,
            now - dt.timedelta(seconds=YEAR_S * (1 - n / len(user_ids))),
            now,
            0,
        )
        for n, user_id in enumerate(user_ids)
    )
    connection = await _loading_connection(dsn)
    try:
        await connection.copy_records_to_table(
            "user_account",
            records=rows,
            columns=[
                "id",
                "email",
                "full_name",
                "password_hash",
                "is_active",
                "version",
                "created_at",
                "updated_at",
                "session_epoch",
            ],
        )
    finally:
        await connection.close()
    return len(user_ids)


def _owners(sizes: Sizes, users: Sequence[uuid.UUID], accounts: Sequence[uuid.UUID]) -> list[Any]:
    """Whose each order is: users drawn with a density falling as 1/sqrt(rank), so that a few
    have thousands of orders and most a handful; then the bench accounts' history."""
    rng = random.Random(15)
    count = len(users)
    owners = [users[int(count * rng.random() ** 2)] for _ in range(sizes.orders)]
    owners += [account for account in accounts for _ in range(BENCH_HISTORY)]
    return owners


def _chunks(
    sizes: Sizes, owners: Sequence[uuid.UUID], now: dt.datetime
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Orders, their lines and their key records, CHUNK orders at a time."""
    rng = random.Random(3)
    for start in range(0, len(owners), CHUNK):
        orders, lines, records = [], [], []
        for n in range(start, min(start + CHUNK, len(owners))):
            recent = n < sizes.recent_orders
            age = rng.uniform(0, DAY_S - 3600) if recent else rng.uniform(DAY_S, YEAR_S)
            created_at = now - dt.timedelta(seconds=age)
            order_id, user_id = uuid.uuid4(), owners[n]
            items = [(rng.choice(SKUS), rng.randint(1, 5), rng.choice(PRICES)) for _ in range(2)]
            total = sum((quantity * price for _, quantity, price in items), Decimal(0))
            orders.append((order_id, user_id, "pending", "EUR", total, created_at, created_at))
            lines += [(order_id, position, *item) for position, item in enumerate(items)]
            if recent:
                records.append(
                    (
                        user_id,
                        f"scale-{n}",
                        secrets.token_hex(32),
                        order_id,
                        created_at,
                        created_at + IDEMPOTENCY_TTL,
                    )
                )
        yield orders, lines, records


async def load_orders(
    dsn: str, sizes: Sizes, users: Sequence[uuid.UUID], accounts: Sequence[uuid.UUID]
) -> dict[str, int]:
    owners = _owners(sizes, users, accounts)
    counts = {"orders": 0, "order_lines": 0, "idempotency_records": 0}
    connection = await _loading_connection(dsn)
    try:
        for orders, lines, records in _chunks(sizes, owners, dt.datetime.now(dt.UTC)):
            await connection.copy_records_to_table(
                "customer_order",
                records=orders,
                columns=[
                    "id",
                    "user_id",
                    "status",
                    "currency",
                    "total",
                    "created_at",
                    "updated_at",
                ],
            )
            await connection.copy_records_to_table(
                "order_line",
                records=lines,
                columns=["order_id", "position", "sku", "quantity", "unit_price"],
            )
            if records:
                await connection.copy_records_to_table(
                    "idempotency_record",
                    records=records,
                    columns=[
                        "user_id",
                        "key",
                        "fingerprint",
                        "order_id",
                        "created_at",
                        "expires_at",
                    ],
                )
            counts["orders"] += len(orders)
            counts["order_lines"] += len(lines)
            counts["idempotency_records"] += len(records)
    finally:
        await connection.close()
    return counts


async def vacuum_analyze(dsn: str) -> None:
    """What autovacuum would do soon after such a load, and the checkpoint that would follow
    it: done now, so that neither runs while the workloads are measured."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


@dataclass(frozen=True)
class Loaded:
    counts: dict[str, int]
    load_s: float
    vacuum_analyze_s: float


def load(
    *,
    users_dsn: str,
    orders_dsn: str,
    sizes: Sizes,
    user_ids: Sequence[uuid.UUID],
    accounts: Sequence[uuid.UUID],
    password_hash: str,
) -> Loaded:
    """Both databases at once (each COPY is the server's work while the other is generated)."""

    async def both() -> Loaded:
        started = time.monotonic()
        users, orders = await asyncio.gather(
            load_users(users_dsn, user_ids, password_hash),
            load_orders(orders_dsn, sizes, user_ids[: sizes.users_with_orders], accounts),
        )
        loaded = time.monotonic()
        await asyncio.gather(vacuum_analyze(users_dsn), vacuum_analyze(orders_dsn))
        return Loaded(
            {"users": users, **orders},
            round(loaded - started, 1),
            round(time.monotonic() - loaded, 1),
        )

    return asyncio.run(both())


async def _prepared_plan(
    connection: asyncpg.Connection, query: ClauseElement, params: dict[str, Any]
) -> list[str]:
    statement = AsyncpgStatement(query)
    return await prepared_plan(connection, statement.sql, statement.args(**params))


def explain_reads(*, users_dsn: str, orders_dsn: str, user_id: uuid.UUID) -> dict[str, Any]:
    """The reads behind list, read and verification, for ``user_id`` (a bench account):
    each plan's nodes, and whether any of them reads a whole table."""
    from order_service.repositories import order_repository
    from user_service.repositories.user_repository import STANDING_BY_ID

    async def explain() -> dict[str, list[str]]:
        # Sessions as the services' asyncpg reads open them.
        settings = SESSION_SETTINGS
        orders = await asyncpg.connect(orders_dsn, timeout=10, server_settings=settings)
        users = await asyncpg.connect(users_dsn, timeout=10, server_settings=settings)
        try:
            newest = await orders.fetchrow(
                "SELECT id, created_at FROM customer_order WHERE user_id = $1"
                " ORDER BY created_at DESC, id DESC LIMIT 1",
                user_id,
            )
            if newest is None:
                raise RuntimeError("the bench account has no order")
            reads = {
                "list orders, first page": (
                    order_repository.FIRST_PAGE,
                    {"user_id": user_id, "limit": 21},
                ),
                "list orders, next page": (
                    order_repository.NEXT_PAGE,
                    {
                        "user_id": user_id,
                        "limit": 21,
                        "before_at": newest["created_at"],
                        "before_id": newest["id"],
                    },
                ),
                "read one order": (
                    order_repository.ONE_ORDER,
                    {"user_id": user_id, "order_id": newest["id"]},
                ),
            }
            plans = {
                name: await _prepared_plan(orders, read.rendered, params)
                for name, (read, params) in reads.items()
            }
            plans["user standing"] = await _prepared_plan(
                users, STANDING_BY_ID, {"user_id": user_id}
            )
            return plans
        finally:
            await orders.close()
            await users.close()

    plans = asyncio.run(explain())
    return {
        name: {"nodes": nodes, "seq_scans": [n for n in nodes if n.startswith("Seq Scan")]}
        for name, nodes in plans.items()
    }
