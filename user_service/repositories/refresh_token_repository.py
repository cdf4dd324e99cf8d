"""SQL for refresh tokens, and nothing else. Never commits.

Spending is one conditional UPDATE: of two transactions spending the same token, the second
waits for the first's row lock (Postgres) or write lock (SQLite), then finds ``spent_at``
set and changes nothing, so at most one of them gets the row back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import Delete, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from user_service.domain import RefreshTokenRecord
from user_service.models import refresh_token as _TOKEN

_RECORD = (
    _TOKEN.c.id,
    _TOKEN.c.family_id,
    _TOKEN.c.user_id,
    _TOKEN.c.client_id,
    _TOKEN.c.session_epoch,
    _TOKEN.c.expires_at,
    _TOKEN.c.spent_at,
    _TOKEN.c.revoked_at,
)


def _record(row: Any) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        id=row.id,
        family_id=row.family_id,
        user_id=row.user_id,
        client_id=row.client_id,
        session_epoch=row.session_epoch,
        expires_at=row.expires_at,
        spent_at=row.spent_at,
        revoked_at=row.revoked_at,
    )


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        token_hash: str,
        family_id: uuid.UUID,
        user_id: uuid.UUID,
        client_id: str,
        session_epoch: int,
        created_at: dt.datetime,
        expires_at: dt.datetime,
    ) -> None:
        await self._session.execute(
            insert(_TOKEN).values(
                id=uuid.uuid4(),
                token_hash=token_hash,
                family_id=family_id,
                user_id=user_id,
                client_id=client_id,
                session_epoch=session_epoch,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    async def get_by_hash(self, token_hash: str) -> RefreshTokenRecord | None:
        result = await self._session.execute(
            select(*_RECORD).where(_TOKEN.c.token_hash == token_hash)
        )
        row = result.first()
        return None if row is None else _record(row)

    async def spend(self, token_hash: str, *, now: dt.datetime) -> RefreshTokenRecord | None:
        """Marks the token spent if it is live (not spent, not revoked, not expired) and
        returns it; None if it was not live, or another transaction spent it first."""
        result = await self._session.execute(
            update(_TOKEN)
            .where(
                _TOKEN.c.token_hash == token_hash,
                _TOKEN.c.spent_at.is_(None),
                _TOKEN.c.revoked_at.is_(None),
                _TOKEN.c.expires_at > now,
            )
            .values(spent_at=now)
            .returning(*_RECORD)
        )
        row = result.first()
        return None if row is None else _record(row)

    async def revoke_family(self, family_id: uuid.UUID, *, now: dt.datetime) -> int:
        result = await self._session.execute(
            update(_TOKEN)
            .where(_TOKEN.c.family_id == family_id, _TOKEN.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(cast(Any, result).rowcount or 0)

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        result = await self._session.execute(delete_expired(now, batch=batch))
        return int(cast(Any, result).rowcount or 0)


def delete_expired(now: dt.datetime, *, batch: int) -> Delete:
    """Up to ``batch`` tokens expired by ``now``, found by the index on ``expires_at``."""
    expired = select(_TOKEN.c.id).where(_TOKEN.c.expires_at <= now).limit(batch)
    return delete(_TOKEN).where(_TOKEN.c.id.in_(expired))
