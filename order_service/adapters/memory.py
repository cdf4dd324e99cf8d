"""In-memory twins of the order ports: the unit of work over an in-process store, and the
order writer that commits into it. They keep the rules the SQL adapters keep (one record per
user and key, replaced only once expired; a change seen only after commit), so the use cases
can be tested with no database and no network."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from types import TracebackType
from typing import Self

from order_service.domain import IdempotencyRecordData, OrderData

KeyOf = tuple[uuid.UUID, str]


@dataclasses.dataclass
class OrderStore:
    """What the order database would hold."""

    orders: dict[uuid.UUID, OrderData] = dataclasses.field(default_factory=dict)
    records: dict[KeyOf, IdempotencyRecordData] = dataclasses.field(default_factory=dict)


class InMemoryOrderRepository:
    def __init__(self, store: OrderStore, changes: dict[uuid.UUID, OrderData]) -> None:
        self._store = store
        self._changes = changes

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        order = self._changes.get(order_id) or self._store.orders.get(order_id)
        return order if order is not None and order.user_id == user_id else None

    async def get_for_update(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        return await self.get_for_user(order_id, user_id)

    async def update_status(
        self, order_id: uuid.UUID, *, status: str, updated_at: dt.datetime
    ) -> None:
        current = self._changes.get(order_id) or self._store.orders[order_id]
        self._changes[order_id] = dataclasses.replace(current, status=status, updated_at=updated_at)

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[OrderData]:
        mine = sorted(
            (o for o in self._store.orders.values() if o.user_id == user_id),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        if before is not None:
            mine = [o for o in mine if (o.created_at, o.id) < before]
        return mine[:limit]


class InMemoryIdempotencyRepository:
    def __init__(self, store: OrderStore, purged: set[KeyOf]) -> None:
        self._store = store
        self._purged = purged

    async def get(self, user_id: uuid.UUID, key: str) -> IdempotencyRecordData | None:
        return self._store.records.get((user_id, key))

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        expired = [
            k
            for k, r in self._store.records.items()
            if r.expires_at <= now and k not in self._purged
        ]
        self._purged.update(expired[:batch])
        return len(expired[:batch])


class InMemoryOrderUnitOfWork:
    """One transaction over an ``OrderStore``: changes are kept apart until ``commit``."""

    orders: InMemoryOrderRepository
    idempotency: InMemoryIdempotencyRepository

    def __init__(self, store: OrderStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        self._changes: dict[uuid.UUID, OrderData] = {}
        self._purged: set[KeyOf] = set()
        self.orders = InMemoryOrderRepository(self._store, self._changes)
        self.idempotency = InMemoryIdempotencyRepository(self._store, self._purged)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._changes.clear()
        self._purged.clear()

    async def commit(self) -> None:
        self._store.orders.update(self._changes)
        for key in self._purged:
            del self._store.records[key]
        self._changes.clear()
        self._purged.clear()


class InMemoryOrderWriter:
    """Writes each order at once into the store, with its key's record if the key is free
    (or held by an expired record). A key still being written is taken, as in the SQL
    writer; the write yields once before it lands, so concurrent callers can meet."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store
        self._in_flight: set[KeyOf] = set()

    async def write(self, order: OrderData, record: IdempotencyRecordData | None = None) -> bool:
        if record is None:
            await asyncio.sleep(0)
            self._store.orders[order.id] = order
            return True
        key = (record.user_id, record.key)
        if key in self._in_flight:
            return False
        self._in_flight.add(key)
        try:
            await asyncio.sleep(0)
            held = self._store.records.get(key)
            if held is not None and held.is_live(record.created_at):
                return False
            self._store.records[key] = record
            self._store.orders[order.id] = order
            return True
        finally:
            self._in_flight.discard(key)

    async def close(self) -> None:
        return None
