"""The order service's repositories and unit of work on real SQLite and real Postgres."""

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.adapters.order_reads import (
    PostgresOrderViews,
    RenderedViews,
    SqlOrderReads,
)
from order_service.adapters.order_writer import PostgresOrderWriter, SqlOrderWriter
from order_service.adapters.sql_unit_of_work import SqlOrderUnitOfWork
from order_service.core.database import MIGRATIONS, VERSION_TABLE
from order_service.domain import (
    IdempotencyRecordData,
    OrderData,
    OrderLineData,
    RenderedOrder,
    UserStanding,
)
from order_service.errors import OrderNotCancellable
from order_service.schemas import OrderPage, order_json, order_read, page_json
from order_service.services import order_service
from order_service.services.ports import OrderViews
from servicekit.clock import utc_now
from servicekit.database import create_engine, create_session_factory
from servicekit.migrations import migrate
from servicekit.postgres import PostgresLookups
from tests.support.backing import postgres_database


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("orders") / "orders.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}", application_name="test")
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        yield engine
        await engine.dispose()
        return
    async with postgres_database("orders") as url:
        engine = create_engine(url, application_name="test")
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        yield engine
        await engine.dispose()


NewUow = Callable[[], SqlOrderUnitOfWork]


class ActiveUsers:
    """The user-verification port answering "active" for everyone."""

    async def verify(self, user_id: uuid.UUID) -> UserStanding:
        return UserStanding(exists=True, active=True, source="test")


@pytest.fixture
def new_uow(engine: AsyncEngine) -> NewUow:
    sessions = create_session_factory(engine)
    return lambda: SqlOrderUnitOfWork(sessions)


NewWriter = Callable[..., SqlOrderWriter]


@pytest.fixture
async def new_writer(engine: AsyncEngine) -> AsyncIterator[NewWriter]:
    """Order writers as the service has them: on Postgres straight on asyncpg."""
    if engine.dialect.name != "postgresql":
        yield lambda **options: SqlOrderWriter(engine, **options)
        return
    lookups = PostgresLookups(
        engine.url.render_as_string(hide_password=False), application_name="test"
    )
    await lookups.start()
    try:
        yield lambda **options: PostgresOrderWriter(engine, lookups, **options)
    finally:
        await lookups.close()


def _order(user_id: uuid.UUID, created_at: dt.datetime, price: str = "1.0005") -> OrderData:
    return OrderData(
        id=uuid.uuid4(),
        user_id=user_id,
        status="pending",
        currency="EUR",
        total=Decimal(price) * 3,
        created_at=created_at,
        updated_at=created_at,
        lines=(OrderLineData(position=0, sku="S", quantity=3, unit_price=Decimal(price)),),
    )


async def test_money_and_time_survive_a_round_trip_exactly(new_uow: NewUow) -> None:
    user_id = uuid.uuid4()
    order = _order(user_id, utc_now(), price="99999999.9999")
    async with new_uow() as uow:
        await uow.orders.add(order)
        await uow.commit()
    async with new_uow() as uow:
        loaded = await uow.orders.get_for_user(order.id, user_id)
    assert loaded is not None
    assert loaded.total == Decimal("299999999.9997")
    assert loaded.lines[0].unit_price == Decimal("99999999.9999")
    assert loaded.created_at == order.created_at
    assert loaded.created_at.tzinfo is not None


async def test_uncommitted_work_is_rolled_back(new_uow: NewUow) -> None:
    user_id = uuid.uuid4()

    async def add_without_commit() -> None:
        async with new_uow() as uow:
            await uow.orders.add(_order(user_id, utc_now()))
            raise RuntimeError("before commit")

    with pytest.raises(RuntimeError):
        await add_without_commit()
    async with new_uow() as uow:
        assert await uow.orders.list_for_user(user_id, limit=10) == []


async def test_keyset_pages_with_equal_timestamps(new_uow: NewUow) -> None:
    user_id = uuid.uuid4()
    same = utc_now()
    orders = [_order(user_id, same) for _ in range(3)] + [
        _order(user_id, same - dt.timedelta(seconds=1))
    ]
    async with new_uow() as uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()
    expected = sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)
    seen: list[uuid.UUID] = []
    before = None
    while True:
        async with new_uow() as uow:
            page = await uow.orders.list_for_user(user_id, limit=2, before=before)
        if not page:
            break
        seen += [o.id for o in page]
        before = (page[-1].created_at, page[-1].id)
    assert seen == [o.id for o in expected]


def _record(order: OrderData, key: str, *, ttl: dt.timedelta) -> IdempotencyRecordData:
    return IdempotencyRecordData(
        user_id=order.user_id,
        key=key,
        fingerprint="f",
        order_id=order.id,
        created_at=order.created_at,
        expires_at=order.created_at + ttl,
    )


async def test_a_key_goes_to_exactly_one_order_across_writers(
    new_writer: NewWriter, new_uow: NewUow
) -> None:
    """Two writers (as two replicas would) race for one key: the database's unique key gives
    it to one order; the other order is not written at all."""
    user_id = uuid.uuid4()
    first, second = new_writer(), new_writer()
    orders = [_order(user_id, utc_now()) for _ in range(2)]
    won = await asyncio.gather(
        *(
            writer.write(order, _record(order, "k", ttl=dt.timedelta(hours=1)))
            for writer, order in zip((first, second), orders, strict=True)
        )
    )
    assert sorted(won) == [False, True]
    async with new_uow() as uow:
        stored = await uow.orders.list_for_user(user_id, limit=10)
        record = await uow.idempotency.get(user_id, "k")
    assert [o.id for o in stored] == [orders[won.index(True)].id]
    assert record is not None
    assert record.order_id == stored[0].id


async def test_an_expired_key_is_claimed_again(writer: SqlOrderWriter, new_uow: NewUow) -> None:
    user_id = uuid.uuid4()
    old = _order(user_id, utc_now() - dt.timedelta(hours=2))
    assert await writer.write(old, _record(old, "k", ttl=dt.timedelta(hours=1)))
    new = _order(user_id, utc_now())
    assert await writer.write(new, _record(new, "k", ttl=dt.timedelta(hours=1)))
    again = _order(user_id, utc_now())
    assert not await writer.write(again, _record(again, "k", ttl=dt.timedelta(hours=1)))
    async with new_uow() as uow:
        record = await uow.idempotency.get(user_id, "k")
        assert await uow.orders.get_for_user(again.id, user_id) is None
    assert record is not None
    assert record.order_id == new.id


async def test_expired_keys_are_purged(new_uow: NewUow) -> None:
    user_id = uuid.uuid4()
    now = utc_now()
    async with new_uow() as uow:
        for n, expires_at in enumerate([now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)]):
            await uow.idempotency.add(
                IdempotencyRecordData(
                    user_id=user_id,
                    key=f"k{n}",
                    fingerprint="f",
                    order_id=uuid.uuid4(),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        await uow.commit()
    assert await order_service.purge_expired_idempotency_keys(new_uow()) >= 1
    async with new_uow() as uow:
        assert await uow.idempotency.get(user_id, "k0") is None
        assert await uow.idempotency.get(user_id, "k1") is not None


async def test_concurrent_cancels_let_exactly_one_win(new_uow: NewUow) -> None:
    user_id = uuid.uuid4()
    order = _order(user_id, utc_now())
    async with new_uow() as uow:
        await uow.orders.add(order)
        await uow.commit()

    results = await asyncio.gather(
        *(
            order_service.cancel_order(new_uow(), ActiveUsers(), user_id=user_id, order_id=order.id)
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, OrderData)]
    assert len(winners) == 1
    assert winners[0].status == "cancelled"
    assert all(isinstance(r, OrderNotCancellable) for r in results if not isinstance(r, OrderData))


@pytest.fixture
def writer(new_writer: NewWriter) -> SqlOrderWriter:
    return new_writer(max_batch=16)


async def test_concurrent_orders_are_group_committed_every_one(
    writer: SqlOrderWriter, new_uow: NewUow
) -> None:
    user_id = uuid.uuid4()
    orders = [_order(user_id, utc_now()) for _ in range(40)]
    await asyncio.gather(*(writer.write(order) for order in orders))
    async with new_uow() as uow:
        stored = await uow.orders.list_for_user(user_id, limit=100)
    assert sorted(o.id for o in stored) == sorted(o.id for o in orders)
    assert all(len(o.lines) == 1 for o in stored)


async def test_one_bad_order_does_not_fail_its_batch(
    writer: SqlOrderWriter, new_uow: NewUow
) -> None:
    user_id = uuid.uuid4()
    existing = _order(user_id, utc_now())
    await writer.write(existing)
    # a primary-key clash: this one order must fail, alone
    clash = dataclasses.replace(_order(user_id, utc_now()), id=existing.id)
    good = [_order(user_id, utc_now()) for _ in range(5)]
    results = await asyncio.gather(
        *(writer.write(order) for order in [*good[:2], clash, *good[2:]]), return_exceptions=True
    )
    clashed = (IntegrityError, asyncpg.exceptions.UniqueViolationError)
    assert [isinstance(r, clashed) for r in results] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    async with new_uow() as uow:
        stored = await uow.orders.list_for_user(user_id, limit=100)
    assert sorted(o.id for o in stored) == sorted(o.id for o in [existing, *good])


async def test_reads_give_the_orders_the_transaction_gives(
    engine: AsyncEngine, new_uow: NewUow
) -> None:
    user_id, other = uuid.uuid4(), uuid.uuid4()
    same = utc_now()
    two_lines = dataclasses.replace(
        _order(user_id, same),
        lines=(
            OrderLineData(position=0, sku="A", quantity=1, unit_price=Decimal("0.0001")),
            OrderLineData(position=1, sku="B", quantity=7, unit_price=Decimal("12.50")),
        ),
    )
    mine = [two_lines, *(_order(user_id, same - dt.timedelta(seconds=n)) for n in range(4))]
    theirs = _order(other, same)
    async with new_uow() as uow:
        for order in [*mine, theirs]:
            await uow.orders.add(order)
        await uow.commit()
    newest_first = sorted(mine, key=lambda o: (o.created_at, o.id), reverse=True)
    reads = SqlOrderReads(create_session_factory(engine, read_only=True))
    pages: list[list[OrderData]] = []
    before = None
    while page := await reads.list_for_user(user_id, limit=2, before=before):
        pages.append(page)
        before = (page[-1].created_at, page[-1].id)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [o for p in pages for o in p] == newest_first
    assert await reads.get_for_user(two_lines.id, user_id) == two_lines
    assert await reads.get_for_user(theirs.id, user_id) is None
    assert await reads.list_for_user(uuid.uuid4(), limit=5) == []


def _as_model(order: OrderData) -> str:
    return order_read(order).model_dump_json()


async def test_rendered_views_show_each_order_as_the_api_does(
    engine: AsyncEngine, new_uow: NewUow
) -> None:
    """Postgres renders a page's orders itself: the same JSON values as ``OrderRead``'s, for
    amounts of every width and times with and without a fraction."""
    user_id = uuid.uuid4()
    whole_second = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    prices = ["0", "0.0001", "12.5", "0.123", "100", "99999999.9999"]
    orders = [
        dataclasses.replace(
            _order(user_id, whole_second - dt.timedelta(minutes=n, microseconds=n * 120_000)),
            lines=(
                OrderLineData(position=0, sku=f"SKU-{n}", quantity=10_000, unit_price=Decimal(p)),
                OrderLineData(position=1, sku='Ä "quoted"', quantity=1, unit_price=Decimal(p)),
            ),
            total=Decimal(p) * 10_001,
            updated_at=whole_second + dt.timedelta(microseconds=n),
        )
        for n, p in enumerate(prices)
    ]
    async with new_uow() as uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()
    newest_first = sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)
    async with contextlib.AsyncExitStack() as stack:
        sessions = create_session_factory(engine, read_only=True)
        all_views: list[OrderViews[RenderedOrder]] = [
            RenderedViews(SqlOrderReads(sessions), order_json)
        ]
        if engine.dialect.name == "postgresql":
            lookups = PostgresLookups(
                engine.url.render_as_string(hide_password=False), application_name="test"
            )
            await lookups.start()
            stack.push_async_callback(lookups.close)
            all_views.append(PostgresOrderViews(lookups))
        for views in all_views:
            seen: list[RenderedOrder] = []
            before = None
            while page := await views.list_for_user(user_id, limit=4, before=before):
                seen += page
                before = (page[-1].created_at, page[-1].id)
            assert [(o.created_at, o.id) for o in seen] == [
                (o.created_at, o.id) for o in newest_first
            ], views
            for rendered, order in zip(seen, newest_first, strict=True):
                assert json.loads(rendered.json) == json.loads(_as_model(order)), views
            one = await views.get_for_user(orders[1].id, user_id)
            assert one is not None, views
            assert json.loads(one.json) == json.loads(_as_model(orders[1])), views
            assert await views.get_for_user(orders[1].id, uuid.uuid4()) is None, views
            body = page_json([o.json for o in seen], "next")
            assert OrderPage.model_validate_json(body).model_dump_json() == (
                f'{{"items":[{",".join(_as_model(o) for o in newest_first)}],"next_cursor":"next"}}'
            )
