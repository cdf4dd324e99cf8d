"""SQL for Idempotency-Key records, and the locks that make a retry in flight a 409."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import cast

from sqlalchemy import Table, delete, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.models import IdempotencyRecord

LockKey = tuple[uuid.UUID, str]
_INSERT_RECORD = insert(cast(Table, IdempotencyRecord.__table__))


class KeyLocks:
    """Keys being processed in this process. Across processes, Postgres advisory locks."""

    def __init__(self) -> None:
        self._held: set[LockKey] = set()

    def try_acquire(self, key: LockKey) -> bool:
        if key in self._held:
            return False
        self._held.add(key)
        return True

    def release(self, key: LockKey) -> None:
        self._held.discard(key)


class IdempotencyRepository:
    def __init__(self, session: AsyncSession, locks: KeyLocks) -> None:
        self._session = session
        self._locks = locks
        self._mine: list[LockKey] = []

    async def try_lock(self, user_id: uuid.UUID, key: str) -> bool:
        """Hold (user, key) until the transaction ends; False if another request holds it."""
        lock_key = (user_id, key)
        if not self._locks.try_acquire(lock_key):
            return False
        self._mine.append(lock_key)
        if self._session.get_bind().dialect.name == "postgresql":
            digest = hashlib.sha256(f"{user_id}:{key}".encode()).digest()
            result = await self._session.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"),
                {"k": int.from_bytes(digest[:8], "big", signed=True)},
            )
            return bool(result.scalar_one())
        return True

    def release_locks(self) -> None:
        for lock_key in self._mine:
            self._locks.release(lock_key)
        self._mine.clear()

    async def get(self, user_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        return await self._session.get(IdempotencyRecord, (user_id, key))

    async def add(self, record: IdempotencyRecord) -> None:
        """A Core INSERT in the order's transaction (no unit-of-work flush for a new row)."""
        await self._session.execute(
            _INSERT_RECORD,
            {
                "user_id": record.user_id,
                "key": record.key,
                "fingerprint": record.fingerprint,
                "order_id": record.order_id,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
            },
        )

    async def remove(self, record: IdempotencyRecord) -> None:
        await self._session.delete(record)
        await self._session.flush()

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        """Delete up to ``batch`` records past their expiry; returns how many."""
        expired = (
            select(IdempotencyRecord.user_id, IdempotencyRecord.key)
            .where(IdempotencyRecord.expires_at <= now)
            .limit(batch)
        )
        result = await self._session.execute(
            delete(IdempotencyRecord).where(
                tuple_(IdempotencyRecord.user_id, IdempotencyRecord.key).in_(expired)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
