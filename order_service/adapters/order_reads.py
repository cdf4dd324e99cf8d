"""The ``OrderReads`` port: a page of orders or one order, one statement, no transaction. On
any database through a session of its own per read; on Postgres straight on asyncpg, the
statement prepared once per connection, which skips the session, the transaction's two
round trips and the engine's row processing."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.domain import OrderData
from order_service.repositories.order_repository import (
    FIRST_PAGE,
    NEXT_PAGE,
    ONE_ORDER,
    OrderRepository,
    orders_from_rows,
)
from servicekit.postgres import AsyncpgStatement, PostgresLookups


class SqlOrderReads:
    """On any database the engine speaks: a read-only session of its own per read."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        async with self._sessions() as session:
            return await OrderRepository(session).get_for_user(order_id, user_id)

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[OrderData]:
        async with self._sessions() as session:
            return await OrderRepository(session).list_for_user(user_id, limit=limit, before=before)


_ONE = AsyncpgStatement(ONE_ORDER.lateral)
_FIRST = AsyncpgStatement(FIRST_PAGE.lateral)
_NEXT = AsyncpgStatement(NEXT_PAGE.lateral)


class PostgresOrderReads:
    """On Postgres: the same statements as ``OrderRepository``'s, straight on asyncpg."""

    def __init__(self, lookups: PostgresLookups) -> None:
        self._lookups = lookups

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        rows = await self._lookups.fetch(_ONE.sql, *_ONE.args(order_id=order_id, user_id=user_id))
        orders = orders_from_rows(rows)
        return orders[0] if orders else None

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[OrderData]:
        if before is None:
            args = _FIRST.args(user_id=user_id, limit=limit)
            return orders_from_rows(await self._lookups.fetch(_FIRST.sql, *args))
        before_at, before_id = before
        args = _NEXT.args(user_id=user_id, limit=limit, before_at=before_at, before_id=before_id)
        return orders_from_rows(await self._lookups.fetch(_NEXT.sql, *args))
