"""A token of an ended session (its epoch below the user's) may do nothing; a token of the
current epoch, or of a later one than a stale standing shows, may act."""

from __future__ import annotations

import datetime as dt

import pytest

from order_service.errors import SessionEnded, UserNotAllowed
from order_service.services import order_service
from tests.unit.order_service.conftest import Orders
from tests.unit.order_service.test_placing import LINES, place


async def test_a_token_of_an_ended_session_may_do_nothing(orders: Orders) -> None:
    user_id = orders.users.add_user()
    placed = await place(orders, user_id)
    orders.users.session_epochs[user_id] = 2  # two password changes since
    for epoch in (0, 1):
        with pytest.raises(SessionEnded):
            await order_service.place_order(
                orders.uow(),
                orders.users,
                orders.writer,
                user_id=user_id,
                currency="EUR",
                lines=LINES,
                idempotency_key=None,
                idempotency_ttl=dt.timedelta(hours=24),
                session_epoch=epoch,
            )
        with pytest.raises(SessionEnded):
            await order_service.list_orders(
                orders.reads(),
                orders.users,
                user_id=user_id,
                limit=5,
                cursor=None,
                session_epoch=epoch,
            )
        with pytest.raises(SessionEnded):
            await order_service.get_order(
                orders.reads(),
                orders.users,
                user_id=user_id,
                order_id=placed.order.id,
                session_epoch=epoch,
            )
        with pytest.raises(SessionEnded):
            await order_service.cancel_order(
                orders.uow(),
                orders.users,
                user_id=user_id,
                order_id=placed.order.id,
                session_epoch=epoch,
            )
    assert list(orders.store.orders) == [placed.order.id]
    assert SessionEnded.status_code == 401
    for epoch in (2, 3):  # the current one, or newer than a standing read before a change
        page = await order_service.list_orders(
            orders.reads(), orders.users, user_id=user_id, limit=5, cursor=None, session_epoch=epoch
        )
        assert [o.id for o in page.orders] == [placed.order.id]


async def test_a_deactivated_user_is_refused_as_before_whatever_the_epoch(orders: Orders) -> None:
    user_id = orders.users.add_user()
    orders.users.active.discard(user_id)
    orders.users.inactive.add(user_id)
    orders.users.session_epochs[user_id] = 1
    with pytest.raises(UserNotAllowed):
        await order_service.list_orders(
            orders.reads(), orders.users, user_id=user_id, limit=5, cursor=None, session_epoch=0
        )
