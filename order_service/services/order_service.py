"""Business rules for orders: place, list, read, cancel.

Every function first asks the user-verification port whether the token's user may act: a
deactivated user's tokens stop working here at once. An order, its lines and its
Idempotency-Key record share one commit; an order without a key shares its commit with the
other orders placed at that moment (group commit), and is answered only once it is durable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from order_service.core.database import OrderUnitOfWork
from order_service.core.user_verification import UserVerifier, VerificationUnavailable
from order_service.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    OrderNotCancellable,
    OrderNotFound,
    SessionEnded,
    UserNotAllowed,
    UserVerificationUnavailable,
)
from order_service.models import (
    CANCELLED,
    PENDING,
    IdempotencyRecord,
    OrderData,
    OrderLineData,
)
from order_service.repositories.order_writer import OrderWriter
from order_service.services.pagination import decode_cursor, encode_cursor
from order_service.services.pricing import format_money, order_total
from servicekit.clock import utc_now


@dataclass(frozen=True, slots=True)
class LineInput:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: OrderData
    replayed: bool


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[OrderData]
    next_cursor: str | None


async def ensure_user_may_act(
    users: UserVerifier, user_id: uuid.UUID, *, session_epoch: int = 0
) -> None:
    """``session_epoch`` is the access token's: a token from before the user's last password
    change belongs to an ended session (401). A deactivated user is refused first (403), as
    before sessions had epochs."""
    try:
        check = await users.verify(user_id)
    except VerificationUnavailable:
        raise UserVerificationUnavailable() from None
    if not (check.exists and check.active):
        raise UserNotAllowed()
    if session_epoch < check.session_epoch:
        raise SessionEnded()


def fingerprint(currency: str, lines: Sequence[LineInput]) -> str:
    """The same order, however its JSON was spelled, has the same fingerprint."""
    canonical = json.dumps(
        {
            "currency": currency,
            "items": [[line.sku, line.quantity, format_money(line.unit_price)] for line in lines],
        },
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    now = utc_now()
    order = new_order(user_id=user_id, currency=currency, lines=lines, now=now)
    if idempotency_key is None:
        # No key to check: the order joins whatever batch is being committed now.
        await writer.write(order)
        return PlacedOrder(order=order, replayed=False)
    request_fingerprint = fingerprint(currency, lines)
    async with uow:
        if not await uow.idempotency.try_lock(user_id, idempotency_key):
            raise IdempotencyKeyInUse()
        record = await uow.idempotency.get(user_id, idempotency_key)
        if record is not None and record.expires_at > now:
            if record.fingerprint != request_fingerprint:
                raise IdempotencyKeyReused()
            replay = await uow.orders.get_for_user(record.order_id, user_id)
            if replay is not None:
                return PlacedOrder(order=replay, replayed=True)
        if record is not None:
            await uow.idempotency.remove(record)
        await uow.orders.add(order)
        await uow.idempotency.add(
            IdempotencyRecord(
                user_id=user_id,
                key=idempotency_key,
                fingerprint=request_fingerprint,
                order_id=order.id,
                created_at=now,
                expires_at=now + idempotency_ttl,
            )
        )
        await uow.commit()
    return PlacedOrder(order=order, replayed=False)


def new_order(
    *, user_id: uuid.UUID, currency: str, lines: Sequence[LineInput], now: dt.datetime
) -> OrderData:
    return OrderData(
        id=uuid.uuid4(),
        user_id=user_id,
        status=PENDING,
        currency=currency,
        total=order_total((line.quantity, line.unit_price) for line in lines),
        created_at=now,
        updated_at=now,
        lines=tuple(
            OrderLineData(
                position=position, sku=line.sku, quantity=line.quantity, unit_price=line.unit_price
            )
            for position, line in enumerate(lines)
        ),
    )


async def list_orders(
    uow: OrderUnitOfWork,
    users: UserVerifier,
    *,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    session_epoch: int = 0,
) -> OrderPage:
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    before = decode_cursor(cursor) if cursor else None
    async with uow:
        orders = await uow.orders.list_for_user(user_id, limit=limit + 1, before=before)
    if len(orders) <= limit:
        return OrderPage(orders=orders, next_cursor=None)
    orders = orders[:limit]
    last = orders[-1]
    return OrderPage(orders=orders, next_cursor=encode_cursor(last.created_at, last.id))


async def get_order(
    uow: OrderUnitOfWork,
    users: UserVerifier,
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    session_epoch: int = 0,
) -> OrderData:
    await ensure_user_may_act(users, user_id, session_epoch=session_epoch)
    async with uow:
        order = await uow.orders.get_for_user(order_id, user_id)
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
        order.status = CANCELLED
        order.updated_at = utc_now()
        await uow.commit()
        return order.data()


async def purge_expired_idempotency_keys(uow: OrderUnitOfWork, *, batch: int = 1000) -> int:
    """Forget keys past their retention, one batch per transaction. Returns how many."""
    purged = 0
    while True:
        async with uow:
            count = await uow.idempotency.purge_expired(utc_now(), batch=batch)
            await uow.commit()
        purged += count
        if count < batch:
            return purged
