"""The read ports: a page of orders or one order, one statement, no transaction.

``OrderReads`` (``OrderData``) through a session of its own per read, on any database.
``OrderViews[RenderedOrder]``, what the read routes answer with: each order rendered as the
API shows it. On Postgres, straight on asyncpg, the statement prepared once per connection
and the order rendered by the database in it, which skips the session, the transaction's two
round trips, the engine's row processing and every object per order and line; elsewhere,
the ``OrderReads`` orders rendered by the function the composition root gives."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.domain import OrderData, RenderedOrder
from order_service.repositories.order_repository import (
    FIRST_PAGE,
    NEXT_PAGE,
    ONE_ORDER,
    OrderRepository,
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


class RenderedViews:
    """The orders of ``reads``, each rendered by ``render`` (the API's JSON of an order)."""

    def __init__(self, reads: SqlOrderReads, render: Callable[[OrderData], str]) -> None:
        self._reads = reads
        self._render = render

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> RenderedOrder | None:
        order = await self._reads.get_for_user(order_id, user_id)
        return None if order is None else self._rendered(order)

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[RenderedOrder]:
        orders = await self._reads.list_for_user(user_id, limit=limit, before=before)
        return [self._rendered(order) for order in orders]

    def _rendered(self, order: OrderData) -> RenderedOrder:
        return RenderedOrder(order.created_at, order.id, self._render(order))


class PostgresOrderViews:
    """On Postgres: the reads of ``OrderRepository``, straight on asyncpg, each order
    rendered by Postgres in the same statement (``BuiltRead.rendered``)."""

    def __init__(self, lookups: PostgresLookups) -> None:
        self._lookups = lookups

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> RenderedOrder | None:
        args = _ONE.args(order_id=order_id, user_id=user_id)
        row = await self._lookups.fetch_row(_ONE.sql, *args)
        return None if row is None else RenderedOrder(*row)

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[RenderedOrder]:
        if before is None:
            args = _FIRST.args(user_id=user_id, limit=limit)
            rows = await self._lookups.fetch(_FIRST.sql, *args)
        else:
            before_at, before_id = before
            args = _NEXT.args(
                user_id=user_id, limit=limit, before_at=before_at, before_id=before_id
            )
            rows = await self._lookups.fetch(_NEXT.sql, *args)
        return [RenderedOrder(*row) for row in rows]


_ONE = AsyncpgStatement(ONE_ORDER.rendered)
_FIRST = AsyncpgStatement(FIRST_PAGE.rendered)
_NEXT = AsyncpgStatement(NEXT_PAGE.rendered)
