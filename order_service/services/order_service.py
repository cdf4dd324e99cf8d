"""Business rules for orders: place, list, read, cancel.

Every function first asks the user-verification port whether the token's user may act: a
deactivated user's tokens stop working here at once. Every new order, with or without an
Idempotency-Key, is written by the order-writer port, which commits it (with its key's record,
in the same transaction) before the answer is built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic

from order_service.domain import (
    CANCELLED,
    PENDING,
    IdempotencyRecordData,
    LineInput,
    OrderData,
    fingerprint,
    new_order,
)
from order_service.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    OrderNotCancellable,
    OrderNotFound,
    SessionEnded,
    UserNotAllowed,
)
from order_service.services.pagination import decode_cursor, encode_cursor
from order_service.services.ports import (
    OrderUnitOfWork,
    OrderViews,
    OrderWriter,
    UserVerifier,
    ViewT,
)
from servicekit.clock import utc_now
from servicekit.housekeeping import purge_in_batches

__all__ = [
    "LineInput",
    "OrderPage",
    "PlacedOrder",
    "cancel_order",
    "ensure_user_may_act",
    "get_order",
    "list_orders",
    "place_order",
    "purge_expired_idempotency_keys",
]


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: OrderData
    replayed: bool


@dataclass(frozen=True, slots=True)
class OrderPage(Generic[ViewT]):
    orders: list[ViewT]
    next_cursor: str | None


async def ensure_user_may_act(
    users: UserVerifier, user_id: uuid.UUID, *, session_epoch: int = 0
) -> None:
    """``session_epoch`` is the access token's: a token from before the user's last password
    change belongs to an ended session (401). A deactivated user is refused first (403), as
    before sessions had epochs."""
    standing = await users.verify(user_id)
    if not standing.may_act:
        raise UserNotAllowed()
    if session_epoch < standing.session_epoch:
        raise SessionEnded()


async def place_order(
    uow: OrderUnitOfWork,
    users: UserVerifier,
    writer: OrderWriter,
    *,
    user_id: uuid.UUID,
    currency: str,
    lines: Sequence[LineInput],
    idempotency_key: str | None,
    idempotency_ttl: dt.timedelta,
    session_epoch: int = 0,
) -> PlacedOrder:
    """``uow`` is only opened when the key turns out to be taken, to read what took it."""
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    now = utc_now()
    order = new_order(user_id=user_id, currency=currency, lines=lines, now=now)
    if idempotency_key is None:
        await writer.write(order)
        return PlacedOrder(order=order, replayed=False)
    request_fingerprint = fingerprint(currency, lines)
    record = IdempotencyRecordData(
        user_id=user_id,
        key=idempotency_key,
        fingerprint=request_fingerprint,
        order_id=order.id,
        created_at=now,
        expires_at=now + idempotency_ttl,
    )
    if await writer.write(order, record):
        return PlacedOrder(order=order, replayed=False)
    # The key is taken: by a committed order (replay it, or refuse another body), or by a
    # request still in flight (whose record is not committed yet).
    async with uow:
        taken = await uow.idempotency.get(user_id, idempotency_key)
        if taken is None or not taken.is_live(now):
            raise IdempotencyKeyInUse()
        if taken.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused()
        replay = await uow.orders.get_for_user(taken.order_id, user_id)
    if replay is None:
        raise IdempotencyKeyInUse()
    return PlacedOrder(order=replay, replayed=True)


async def list_orders(
    views: OrderViews[ViewT],
    users: UserVerifier,
    *,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    session_epoch: int = 0,
) -> OrderPage[ViewT]:
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    before = decode_cursor(cursor) if cursor else None
    orders = await views.list_for_user(user_id, limit=limit + 1, before=before)
    if len(orders) <= limit:
        return OrderPage(orders=orders, next_cursor=None)
    orders = orders[:limit]
    last = orders[-1]
    return OrderPage(orders=orders, next_cursor=encode_cursor(last.created_at, last.id))


async def get_order(
    views: OrderViews[ViewT],
    users: UserVerifier,
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    session_epoch: int = 0,
) -> ViewT:
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    order = await views.get_for_user(order_id, user_id)
    if order is None:
        raise OrderNotFound()
    return order


async def cancel_order(
    uow: OrderUnitOfWork,
    users: UserVerifier,
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    session_epoch: int = 0,
) -> OrderData:
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    async with uow:
        order = await uow.orders.get_for_update(order_id, user_id)
        if order is None:
            raise OrderNotFound()
        if order.status != PENDING:
            raise OrderNotCancellable()
        cancelled = dataclasses.replace(order, status=CANCELLED, updated_at=utc_now())
        await uow.orders.update_status(
            order_id, status=cancelled.status, updated_at=cancelled.updated_at
        )
        await uow.commit()
    return cancelled


async def purge_expired_idempotency_keys(uow: OrderUnitOfWork, *, batch: int = 1000) -> int:
    """Forget keys past their retention, one batch per transaction. Returns how many."""
    now = utc_now()
    return await purge_in_batches(
        uow, lambda open_uow, size: open_uow.idempotency.purge_expired(now, batch=size), batch=batch
    )
