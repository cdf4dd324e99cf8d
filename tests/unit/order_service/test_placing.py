"""Placing an order: without a key, with a new key, replayed, a key reused with another body,
a key still in flight, an expired key."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from order_service.domain import LineInput
from order_service.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from order_service.services import order_service
from order_service.services.order_service import PlacedOrder
from servicekit.clock import utc_now
from tests.unit.order_service.conftest import Orders

TTL = dt.timedelta(hours=24)
LINES = [
    LineInput(sku="BOOK-1", quantity=2, unit_price=Decimal("12.50")),
    LineInput(sku="PEN-9", quantity=3, unit_price=Decimal("0.99")),
]


async def place(
    orders: Orders,
    user_id: uuid.UUID,
    *,
    key: str | None = None,
    lines: list[LineInput] = LINES,
    currency: str = "EUR",
) -> PlacedOrder:
    return await order_service.place_order(
        orders.uow(),
        orders.users,
        orders.writer,
        user_id=user_id,
        currency=currency,
        lines=lines,
        idempotency_key=key,
        idempotency_ttl=TTL,
    )


async def test_an_order_without_a_key_is_written_with_its_total(orders: Orders) -> None:
    user_id = orders.users.add_user()
    placed = await place(orders, user_id)
    assert not placed.replayed
    assert placed.order.total == Decimal("27.9700")
    assert placed.order.status == "pending"
    assert [line.position for line in placed.order.lines] == [0, 1]
    assert orders.store.orders == {placed.order.id: placed.order}
    assert orders.store.records == {}


async def test_two_orders_without_a_key_are_two_orders(orders: Orders) -> None:
    user_id = orders.users.add_user()
    first, second = await place(orders, user_id), await place(orders, user_id)
    assert first.order.id != second.order.id
    assert len(orders.store.orders) == 2


async def test_a_new_key_writes_the_order_and_its_record(orders: Orders) -> None:
    user_id = orders.users.add_user()
    placed = await place(orders, user_id, key="k1")
    assert not placed.replayed
    record = orders.store.records[(user_id, "k1")]
    assert record.order_id == placed.order.id
    assert record.expires_at == placed.order.created_at + TTL


async def test_the_same_key_and_body_replay_the_first_order(orders: Orders) -> None:
    user_id = orders.users.add_user()
    first = await place(orders, user_id, key="k1")
    # The same body spelled otherwise (a price with more zeros) is the same request.
    respelled = [dataclasses.replace(LINES[0], unit_price=Decimal("12.5000")), LINES[1]]
    again = await place(orders, user_id, key="k1", lines=respelled)
    assert again.replayed
    assert again.order == first.order
    assert len(orders.store.orders) == 1


async def test_the_same_key_with_another_body_is_refused(orders: Orders) -> None:
    user_id = orders.users.add_user()
    await place(orders, user_id, key="k1")
    with pytest.raises(IdempotencyKeyReused):
        await place(orders, user_id, key="k1", lines=LINES[:1])
    with pytest.raises(IdempotencyKeyReused):
        await place(orders, user_id, key="k1", currency="GBP")
    assert len(orders.store.orders) == 1


async def test_keys_belong_to_their_user(orders: Orders) -> None:
    alice, bob = orders.users.add_user(), orders.users.add_user()
    a = await place(orders, alice, key="shared")
    b = await place(orders, bob, key="shared", currency="GBP")
    assert not b.replayed
    assert a.order.id != b.order.id


async def test_a_retry_while_the_first_is_in_flight_is_a_conflict(orders: Orders) -> None:
    user_id = orders.users.add_user()
    orders.writer.pause()
    first = asyncio.create_task(place(orders, user_id, key="k1"))
    await asyncio.sleep(0)  # the first request reaches the writer and waits there
    with pytest.raises(IdempotencyKeyInUse):
        await place(orders, user_id, key="k1")
    orders.writer.resume()
    placed = await first
    assert not placed.replayed
    # Once the first is committed, the retry replays it.
    assert (await place(orders, user_id, key="k1")).order == placed.order


async def test_an_expired_key_makes_a_new_order(orders: Orders) -> None:
    user_id = orders.users.add_user()
    first = await place(orders, user_id, key="k1")
    record = orders.store.records[(user_id, "k1")]
    orders.store.records[(user_id, "k1")] = dataclasses.replace(
        record, expires_at=utc_now() - dt.timedelta(seconds=1)
    )
    again = await place(orders, user_id, key="k1", lines=LINES[:1])
    assert not again.replayed
    assert again.order.id != first.order.id
    assert orders.store.records[(user_id, "k1")].order_id == again.order.id
    assert len(orders.store.orders) == 2


async def test_expired_keys_are_purged_and_live_ones_kept(orders: Orders) -> None:
    user_id = orders.users.add_user()
    await place(orders, user_id, key="old")
    await place(orders, user_id, key="new")
    old = orders.store.records[(user_id, "old")]
    orders.store.records[(user_id, "old")] = dataclasses.replace(
        old, expires_at=utc_now() - dt.timedelta(seconds=1)
    )
    assert await order_service.purge_expired_idempotency_keys(orders.uow(), batch=1) == 1
    assert set(orders.store.records) == {(user_id, "new")}
