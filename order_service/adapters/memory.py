"""In-memory twins of the order unit of work, the order reads and the order writer, over one
shared store: the business rules run on them with no database at all (the unit tests, first
of all)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from types import TracebackType
from typing import Self

from order_service.domain import IdempotencyRecordData, OrderData

KeyOf = tuple[uuid.UUID, str]


class InMemoryOrderStore:
    """What the database would hold: committed orders and Idempotency-Key records."""

    def __init__(self) -> None:
        self.orders: dict[uuid.UUID, OrderData] = {}
        self.records: dict[KeyOf, IdempotencyRecordData] = {}


class InMemoryOrderRepository:
    def __init__(self, store: InMemoryOrderStore, changed: dict[uuid.UUID, OrderData]) -> None:
        self._store = store
        self._changed = changed

    def _current(self, order_id: uuid.UUID) -> OrderData | None:
        return self._changed.get(order_id) or self._store.orders.get(order_id)

    async def add(self, order: OrderData) -> None:
        self._changed[order.id] = order

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        order = self._current(order_id)
        return order if order is not None and order.user_id == user_id else None

    async def get_for_update(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        return await self.get_for_user(order_id, user_id)

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[OrderData]:
        ids = {*self._store.orders, *self._changed}
        mine = [o for o in map(self._current, ids) if o is not None and o.user_id == user_id]
        if before is not None:
            mine = [o for o in mine if (o.created_at, o.id) < before]
        mine.sort(key=lambda o: (o.created_at, o.id), reverse=True)
        return mine[:limit]

    async def update_status(
        self, order_id: uuid.UUID, *, status: str, updated_at: dt.datetime
    ) -> None:
        order = self._current(order_id)
        if order is not None:
            self._changed[order_id] = dataclasses.replace(
                order, status=status, updated_at=updated_at
            )


class InMemoryOrderReads:
    """The ``OrderReads`` twin: the committed orders of the store."""

    def __init__(self, store: InMemoryOrderStore) -> None:
        self._committed = InMemoryOrderRepository(store, {})

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        return await self._committed.get_for_user(order_id, user_id)

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[OrderData]:
        return await self._committed.list_for_user(user_id, limit=limit, before=before)


class InMemoryIdempotencyRepository:
    def __init__(self, store: InMemoryOrderStore, purged: set[KeyOf]) -> None:
        self._store = store
        self._purged = purged

    async def get(self, user_id: uuid.UUID, key: str) -> IdempotencyRecordData | None:
        if (user_id, key) in self._purged:
            return None
        return self._store.records.get((user_id, key))

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        expired = [
            k
            for k, r in self._store.records.items()
            if not r.is_live(now) and k not in self._purged
        ][:batch]
        self._purged.update(expired)
        return len(expired)


class InMemoryOrderUnitOfWork:
    """Changes are kept aside and reach the store only on ``commit``."""

    orders: InMemoryOrderRepository
    idempotency: InMemoryIdempotencyRepository

    def __init__(self, store: InMemoryOrderStore) -> None:
        self._store = store
        self.committed = False

    async def __aenter__(self) -> Self:
        self._changed: dict[uuid.UUID, OrderData] = {}
        self._purged: set[KeyOf] = set()
        self.orders = InMemoryOrderRepository(self._store, self._changed)
        self.idempotency = InMemoryIdempotencyRepository(self._store, self._purged)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._changed.clear()
        self._purged.clear()

    async def commit(self) -> None:
        self._store.orders.update(self._changed)
        for key in self._purged:
            self._store.records.pop(key, None)
        self._changed.clear()
        self._purged.clear()
        self.committed = True


class InMemoryOrderWriter:
    """The order writer's twin: the same answers, committed at once. ``pause()`` holds every
    write in flight until ``resume()``, to show what a concurrent retry meets."""

    def __init__(self, store: InMemoryOrderStore) -> None:
        self._store = store
        self._in_flight: set[KeyOf] = set()
        self._open = asyncio.Event()
        self._open.set()

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    async def write(self, order: OrderData, record: IdempotencyRecordData | None = None) -> bool:
        if record is None:
            await self._open.wait()
            self._store.orders[order.id] = order
            return True
        key = (record.user_id, record.key)
        if key in self._in_flight:
            return False
        self._in_flight.add(key)
        try:
            await self._open.wait()
            held = self._store.records.get(key)
            if held is not None and held.expires_at > record.created_at:
                return False
            self._store.records[key] = record
            self._store.orders[order.id] = order
            return True
        finally:
            self._in_flight.discard(key)

    async def close(self) -> None:
        self._open.set()
