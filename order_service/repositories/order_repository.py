"""SQL for orders, and nothing else. Never commits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from order_service.domain import OrderData, OrderLineData
from order_service.models import Order, OrderLine
from servicekit.postgres import column_arrays, insert_from_arrays

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_INSERT_ORDER = insert(_ORDERS)
_INSERT_LINE = insert(_LINES)
# The same INSERTs on asyncpg as one statement for a whole batch, orders and lines, each column
# one array (order_arrays): atomic on its own, with no BEGIN and COMMIT round trips. The lines'
# foreign key is checked at the end of the statement, when the orders are in.
INSERT_ORDERS_WITH_LINES = insert_from_arrays(_LINES).add_cte(
    insert_from_arrays(_ORDERS).cte("placed")
)


def order_arrays(orders: Sequence[OrderData]) -> dict[str, list[Any]]:
    """The parameters of ``INSERT_ORDERS_WITH_LINES`` for ``orders``."""
    return column_arrays(_ORDERS, _order_rows(orders)) | column_arrays(_LINES, _line_rows(orders))


async def insert_orders(
    executor: AsyncSession | AsyncConnection, orders: Sequence[OrderData]
) -> None:
    """New orders and their lines as two Core INSERTs (each an executemany): the orders are
    new, so there is nothing for the ORM to track."""
    await executor.execute(_INSERT_ORDER, _order_rows(orders))
    await executor.execute(_INSERT_LINE, _line_rows(orders))


def _order_rows(orders: Sequence[OrderData]) -> list[dict[str, Any]]:
    return [
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
    ]


def _line_rows(orders: Sequence[OrderData]) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "position": line.position,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for order in orders
        for line in order.lines
    ]


def _with_lines(page: Subquery, *, lateral: bool) -> Select[Any]:
    """The orders of ``page`` with their lines, in one statement: newest first, each
    order's lines in their order.

    On Postgres the lines are a LATERAL subquery (kept apart by ``OFFSET 0``), so they are
    always found with an index lookup per order of the page. Joined plainly, the planner
    chose a hash join over every order line whenever its estimates were off (a prepared
    statement's generic plan, or a table not yet analyzed): docs/benchmarks.md has the
    EXPLAIN ANALYZE figures. SQLite has no LATERAL, and no such plan to fear."""
    if lateral:
        lines = (
            select(_LINES.c.position, _LINES.c.sku, _LINES.c.quantity, _LINES.c.unit_price)
            .where(_LINES.c.order_id == page.c.id)
            .offset(0)
            .lateral("line")
        )
        return (
            select(page, lines)
            .join_from(page, lines, true(), isouter=True)
            .order_by(page.c.created_at.desc(), page.c.id.desc(), lines.c.position)
        )
    return (
        select(page, _LINES.c.position, _LINES.c.sku, _LINES.c.quantity, _LINES.c.unit_price)
        .join_from(page, _LINES, _LINES.c.order_id == page.c.id, isouter=True)
        .order_by(page.c.created_at.desc(), page.c.id.desc(), _LINES.c.position)
    )


# Postgres renders an order as ``order_service.schemas.OrderRead`` shows it. Money as
# ``format_money`` writes it: at least two decimals, at most four, no exponent (a 9 after the
# point is a digit that FM drops when it is a trailing zero). Times as pydantic writes an
# aware UTC datetime: ISO 8601 with a Z, the fraction only when there is one, six digits.
_MONEY_TEXT: ColumnElement[str] = literal_column("'FM9999999999999990.0099'")
_SECONDS_TEXT: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS'""")
_FRACTION_TEXT: ColumnElement[str] = literal_column("'.US'")
_UTC: ColumnElement[str] = literal_column("'UTC'")


def _money_text(amount: ColumnElement[Any]) -> ColumnElement[str]:
    return func.to_char(amount, _MONEY_TEXT)


def _time_text(at: ColumnElement[Any]) -> ColumnElement[str]:
    utc = func.timezone(_UTC, at)
    fraction = case(
        (func.date_trunc("second", at) == at, ""), else_=func.to_char(utc, _FRACTION_TEXT)
    )
    return func.concat(func.to_char(utc, _SECONDS_TEXT), fraction, "Z")


def _rendered(page: Subquery) -> Select[Any]:
    """The orders of ``page``, newest first: (created_at, id, the order's JSON). Its lines are
    an index lookup per order, as in the LATERAL read."""
    line = func.json_build_object(
        "sku",
        _LINES.c.sku,
        "quantity",
        _LINES.c.quantity,
        "unit_price",
        _money_text(_LINES.c.unit_price),
        "line_total",
        _money_text(_LINES.c.unit_price * _LINES.c.quantity),
    )
    items = (
        select(
            func.coalesce(
                func.json_agg(aggregate_order_by(line, _LINES.c.position)),
                literal_column("'[]'::json"),
            )
        )
        .where(_LINES.c.order_id == page.c.id)
        .scalar_subquery()
    )
    order = func.json_build_object(
        "id",
        page.c.id,
        "user_id",
        page.c.user_id,
        "status",
        page.c.status,
        "currency",
        page.c.currency,
        "items",
        items,
        "total",
        _money_text(page.c.total),
        "created_at",
        _time_text(page.c.created_at),
        "updated_at",
        _time_text(page.c.updated_at),
    )
    return select(page.c.created_at, page.c.id, order.label("json")).order_by(
        page.c.created_at.desc(), page.c.id.desc()
    )


# The columns of every order read, in the order ``orders_from_rows`` takes them: an order's
# (as ``OrderData`` lists its fields), then a line's.
_READ_COLUMNS = (
    *(f.name for f in dataclasses.fields(OrderData) if f.name != "lines"),
    *(f.name for f in dataclasses.fields(OrderLineData)),
)


class BuiltRead:
    """A read built once, for each kind of database: building a statement costs more than
    running it (docs/benchmarks.md)."""

    def __init__(self, page: Subquery) -> None:
        self.plain = _with_lines(page, lateral=False)
        self.lateral = _with_lines(page, lateral=True)
        self.rendered = _rendered(page)
        for built in (self.plain, self.lateral):
            if tuple(built.selected_columns.keys()) != _READ_COLUMNS:
                raise AssertionError(f"orders_from_rows reads {_READ_COLUMNS}")

    def for_dialect(self, name: str) -> Select[Any]:
        return self.lateral if name == "postgresql" else self.plain


_NEWEST_FIRST = (_ORDERS.c.created_at.desc(), _ORDERS.c.id.desc())
ONE_ORDER = BuiltRead(
    select(_ORDERS)
    .where(_ORDERS.c.id == bindparam("order_id"), _ORDERS.c.user_id == bindparam("user_id"))
    .subquery("page")
)
FIRST_PAGE = BuiltRead(
    select(_ORDERS)
    .where(_ORDERS.c.user_id == bindparam("user_id"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("limit"))
    .subquery("page")
)
NEXT_PAGE = BuiltRead(
    select(_ORDERS)
    .where(
        _ORDERS.c.user_id == bindparam("user_id"),
        or_(
            _ORDERS.c.created_at < bindparam("before_at"),
            and_(
                _ORDERS.c.created_at == bindparam("before_at"),
                _ORDERS.c.id < bindparam("before_id"),
            ),
        ),
    )
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("limit"))
    .subquery("page")
)

_LOCK_ORDER = (
    select(_ORDERS.c.id)
    .where(_ORDERS.c.id == bindparam("order_id"), _ORDERS.c.user_id == bindparam("user_id"))
    .with_for_update()
)
_UPDATE_STATUS = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("order_id"))
    .values(status=bindparam("status"), updated_at=bindparam("updated_at"))
)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, order: OrderData) -> None:
        await insert_orders(self._session, [order])

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        orders = await self._read(ONE_ORDER, {"order_id": order_id, "user_id": user_id})
        return orders[0] if orders else None

    async def get_for_update(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        """The order, its row locked until the transaction ends (SQLite has one writer)."""
        params = {"order_id": order_id, "user_id": user_id}
        if (await self._session.execute(_LOCK_ORDER, params)).first() is None:
            return None
        return await self.get_for_user(order_id, user_id)

    async def update_status(
        self, order_id: uuid.UUID, *, status: str, updated_at: dt.datetime
    ) -> None:
        await self._session.execute(
            _UPDATE_STATUS, {"order_id": order_id, "status": status, "updated_at": updated_at}
        )

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[OrderData]:
        """Newest first; ``before`` is the (created_at, id) of the last order already seen."""
        if before is None:
            return await self._read(FIRST_PAGE, {"user_id": user_id, "limit": limit})
        created_at, order_id = before
        return await self._read(
            NEXT_PAGE,
            {"user_id": user_id, "limit": limit, "before_at": created_at, "before_id": order_id},
        )

    async def _read(self, read: BuiltRead, params: dict[str, Any]) -> list[OrderData]:
        connection = await self._session.connection()
        query = read.for_dialect(connection.dialect.name)
        return orders_from_rows((await connection.execute(query, params)).all())


def orders_from_rows(rows: Sequence[Sequence[Any]]) -> list[OrderData]:
    """The orders of a read built by ``BuiltRead``: one row per line (an order without lines
    has one row, its line columns null), by position, as the statement's columns come."""
    orders: list[OrderData] = []
    lines: list[OrderLineData] = []
    last = len(rows) - 1
    for n, row in enumerate(rows):
        if row[7] is not None:
            lines.append(OrderLineData(row[7], row[8], row[9], row[10]))
        if n == last or rows[n + 1][0] != row[0]:
            orders.append(
                OrderData(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(lines))
            )
            lines = []
    return orders
