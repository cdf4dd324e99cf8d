"""Listing with a cursor, reading one order, cancelling, and what the user's standing allows."""

from __future__ import annotations

import uuid

import pytest

from order_service.errors import (
    InvalidCursor,
    OrderNotCancellable,
    OrderNotFound,
    UserNotAllowed,
    UserVerificationUnavailable,
)
from order_service.services import order_service
from tests.unit.order_service.conftest import Orders
from tests.unit.order_service.test_placing import place


async def test_pages_walk_newest_first_to_the_end(orders: Orders) -> None:
    user_id = orders.users.add_user()
    other = orders.users.add_user()
    ids = [(await place(orders, user_id)).order.id for _ in range(5)]
    await place(orders, other)
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await order_service.list_orders(
            orders.reads(), orders.users, user_id=user_id, limit=2, cursor=cursor
        )
        seen += [o.id for o in page.orders]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    expected = sorted(
        (orders.store.orders[i] for i in ids), key=lambda o: (o.created_at, o.id), reverse=True
    )
    assert seen == [o.id for o in expected]


async def test_an_exact_last_page_has_no_cursor(orders: Orders) -> None:
    user_id = orders.users.add_user()
    for _ in range(2):
        await place(orders, user_id)
    page = await order_service.list_orders(
        orders.reads(), orders.users, user_id=user_id, limit=2, cursor=None
    )
    assert len(page.orders) == 2
    assert page.next_cursor is None


async def test_an_invalid_cursor_is_refused(orders: Orders) -> None:
    user_id = orders.users.add_user()
    with pytest.raises(InvalidCursor):
        await order_service.list_orders(
            orders.reads(), orders.users, user_id=user_id, limit=2, cursor="not-a-cursor"
        )


async def test_a_user_reads_their_own_order_only(orders: Orders) -> None:
    alice, bob = orders.users.add_user(), orders.users.add_user()
    placed = await place(orders, alice)
    read = await order_service.get_order(
        orders.reads(), orders.users, user_id=alice, order_id=placed.order.id
    )
    assert read == placed.order
    with pytest.raises(OrderNotFound):
        await order_service.get_order(
            orders.reads(), orders.users, user_id=bob, order_id=placed.order.id
        )
    with pytest.raises(OrderNotFound):
        await order_service.get_order(
            orders.reads(), orders.users, user_id=alice, order_id=uuid.uuid4()
        )


async def test_a_pending_order_is_cancelled_once(orders: Orders) -> None:
    user_id = orders.users.add_user()
    placed = await place(orders, user_id)
    cancelled = await order_service.cancel_order(
        orders.uow(), orders.users, user_id=user_id, order_id=placed.order.id
    )
    assert cancelled.status == "cancelled"
    assert cancelled.updated_at >= placed.order.updated_at
    assert orders.store.orders[placed.order.id] == cancelled
    with pytest.raises(OrderNotCancellable):
        await order_service.cancel_order(
            orders.uow(), orders.users, user_id=user_id, order_id=placed.order.id
        )


async def test_someone_elses_order_cannot_be_cancelled(orders: Orders) -> None:
    alice, bob = orders.users.add_user(), orders.users.add_user()
    placed = await place(orders, alice)
    with pytest.raises(OrderNotFound):
        await order_service.cancel_order(
            orders.uow(), orders.users, user_id=bob, order_id=placed.order.id
        )
    assert orders.store.orders[placed.order.id].status == "pending"


@pytest.mark.parametrize("standing", ["unknown", "inactive"])
async def test_an_unknown_or_deactivated_user_may_do_nothing(orders: Orders, standing: str) -> None:
    owner = orders.users.add_user()
    placed = await place(orders, owner)
    user_id = uuid.uuid4()
    if standing == "inactive":
        orders.users.inactive.add(user_id)
    with pytest.raises(UserNotAllowed):
        await place(orders, user_id)
    with pytest.raises(UserNotAllowed):
        await place(orders, user_id, key="k")
    with pytest.raises(UserNotAllowed):
        await order_service.list_orders(
            orders.reads(), orders.users, user_id=user_id, limit=5, cursor=None
        )
    with pytest.raises(UserNotAllowed):
        await order_service.get_order(
            orders.reads(), orders.users, user_id=user_id, order_id=placed.order.id
        )
    with pytest.raises(UserNotAllowed):
        await order_service.cancel_order(
            orders.uow(), orders.users, user_id=user_id, order_id=placed.order.id
        )
    assert list(orders.store.orders) == [placed.order.id]
    assert UserNotAllowed.status_code == 403


async def test_no_order_is_written_while_users_cannot_be_verified(orders: Orders) -> None:
    user_id = orders.users.add_user()
    orders.users.unavailable = True
    with pytest.raises(UserVerificationUnavailable) as raised:
        await place(orders, user_id, key="k")
    assert raised.value.status_code == 503
    assert "Retry-After" in raised.value.headers
    with pytest.raises(UserVerificationUnavailable):
        await order_service.list_orders(
            orders.reads(), orders.users, user_id=user_id, limit=5, cursor=None
        )
    assert orders.store.orders == {}
