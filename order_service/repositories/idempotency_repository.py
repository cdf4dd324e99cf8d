"""SQL for Idempotency-Key records."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from order_service.domain import IdempotencyRecordData
from order_service.models import IdempotencyRecord
from servicekit.postgres import column_arrays, insert_from_arrays

_RECORDS = cast(Table, IdempotencyRecord.__table__)
_INSERT_RECORD = insert(_RECORDS)
_GET_RECORD = select(_RECORDS).where(
    _RECORDS.c.user_id == bindparam("user_id"), _RECORDS.c.key == bindparam("key")
)


def _claim(statement: Any) -> Any:
    """Insert each record unless its key is held by an unexpired record, which is then
    replaced; RETURNING names the keys won. A key held by a transaction not yet committed
    waits for it (the unique key's own lock), then counts as held if that one committed."""
    fresh = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_RECORDS.c.user_id, _RECORDS.c.key],
        set_={
            "fingerprint": fresh.fingerprint,
            "order_id": fresh.order_id,
            "created_at": fresh.created_at,
            "expires_at": fresh.expires_at,
        },
        where=_RECORDS.c.expires_at <= fresh.created_at,
    ).returning(_RECORDS.c.user_id, _RECORDS.c.key)


_CLAIM = {
    "postgresql": _claim(postgresql.insert(_RECORDS)),
    "sqlite": _claim(sqlite.insert(_RECORDS)),
}
# The same claim on asyncpg, the batch's records as one array per column (record_arrays).
CLAIM_ARRAYS = _claim(insert_from_arrays(_RECORDS))


def record_arrays(records: Sequence[IdempotencyRecordData]) -> dict[str, list[Any]]:
    """The parameters of ``CLAIM_ARRAYS`` for ``records``."""
    return column_arrays(_RECORDS, [_row(record) for record in records])


def _row(record: IdempotencyRecordData) -> dict[str, Any]:
    return {
        "user_id": record.user_id,
        "key": record.key,
        "fingerprint": record.fingerprint,
        "order_id": record.order_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


async def claim_keys(
    executor: AsyncSession | AsyncConnection, records: Sequence[IdempotencyRecordData]
) -> set[tuple[uuid.UUID, str]]:
    """Write the records whose key is free (or expired) in one statement; returns the
    (user_id, key) of those written. Callers pass each key once, in a stable order (so that
    two transactions wait for each other's keys in the same order, never in a cycle)."""
    connection = executor if isinstance(executor, AsyncConnection) else await executor.connection()
    result = await connection.execute(
        _CLAIM[connection.dialect.name], [_row(record) for record in records]
    )
    return {(row.user_id, row.key) for row in result}


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: uuid.UUID, key: str) -> IdempotencyRecordData | None:
        result = await self._session.execute(_GET_RECORD, {"user_id": user_id, "key": key})
        row = result.one_or_none()
        if row is None:
            return None
        return IdempotencyRecordData(
            user_id=row.user_id,
            key=row.key,
            fingerprint=row.fingerprint,
            order_id=row.order_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    async def add(self, record: IdempotencyRecordData) -> None:
        """A Core INSERT in the caller's transaction."""
        await self._session.execute(_INSERT_RECORD, _row(record))

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        """Delete up to ``batch`` records past their expiry; returns how many."""
        expired = (
            select(_RECORDS.c.user_id, _RECORDS.c.key)
            .where(_RECORDS.c.expires_at <= now)
            .limit(batch)
        )
        result = await self._session.execute(
            delete(_RECORDS).where(tuple_(_RECORDS.c.user_id, _RECORDS.c.key).in_(expired))
        )
        return int(getattr(result, "rowcount", 0) or 0)
