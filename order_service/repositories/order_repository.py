"""SQL for orders, and nothing else. Never commits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from order_service.models import Order, OrderLine, OrderView

_INSERT_ORDER = insert(cast(Table, Order.__table__))
_INSERT_LINE = insert(cast(Table, OrderLine.__table__))


async def insert_orders(
    executor: AsyncSession | AsyncConnection, orders: Sequence[OrderView]
) -> None:
    """New orders and their lines as two Core INSERTs (each an executemany): the orders are
    new, so there is nothing for the ORM to track."""
    await executor.execute(
        _INSERT_ORDER,
        [
            {
                "id": order.id,
                "user_id": order.user_id,
                "status": order.status,
                "currency": order.currency,
                "total": order.total,
                "created_at": order.created_at,
                "updated_at": order.updated_at,
            }
            for order in orders
        ],
    )
    await executor.execute(
        _INSERT_LINE,
        [
            {
                "order_id": order.id,
                "position": line.position,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for order in orders
            for line in order.lines
        ],
    )


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, order: OrderView) -> None:
        await insert_orders(self._session, [order])

    async def get_for_user(
        self, order_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> Order | None:
        query = (
            select(Order)
            .where(Order.id == order_id, Order.user_id == user_id)
            .options(selectinload(Order.lines))
        )
        if for_update:
            query = query.with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[Order]:
        """Newest first; ``before`` is the (created_at, id) of the last order already seen."""
        query = select(Order).where(Order.user_id == user_id)
        if before is not None:
            created_at, order_id = before
            query = query.where(
                or_(
                    Order.created_at < created_at,
                    and_(Order.created_at == created_at, Order.id < order_id),
                )
            )
        query = (
            query.order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .options(selectinload(Order.lines))
        )
        return list((await self._session.execute(query)).scalars())
