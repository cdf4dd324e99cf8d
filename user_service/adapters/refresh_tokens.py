"""The in-memory twin of the refresh-token repository, for the use cases' unit tests.

Writes go to the shared store at once, each with its undo, as a row lock would let them: a
unit of work that ends without committing undoes its own writes. So two units of work
spending one token behave as on the database: the second finds it spent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable

from user_service.domain import RefreshTokenRecord


class RefreshTokenStore:
    """Every refresh token of the twin, by hash: what the table holds."""

    def __init__(self) -> None:
        self.rows: dict[str, RefreshTokenRecord] = {}

    def family(self, family_id: uuid.UUID) -> list[RefreshTokenRecord]:
        return [row for row in self.rows.values() if row.family_id == family_id]


class InMemoryRefreshTokenRepository:
    def __init__(self, store: RefreshTokenStore) -> None:
        self._store = store
        self._undo: list[Callable[[], None]] = []

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
        if token_hash in self._store.rows:
            raise ValueError("duplicate token hash")
        self._set(
            token_hash,
            RefreshTokenRecord(
                id=uuid.uuid4(),
                family_id=family_id,
                user_id=user_id,
                client_id=client_id,
                session_epoch=session_epoch,
                expires_at=expires_at,
                spent_at=None,
                revoked_at=None,
            ),
        )

    async def get_by_hash(self, token_hash: str) -> RefreshTokenRecord | None:
        return self._store.rows.get(token_hash)

    async def spend(self, token_hash: str, *, now: dt.datetime) -> RefreshTokenRecord | None:
        row = self._store.rows.get(token_hash)
        if row is None or row.spent_at or row.revoked_at or row.expires_at <= now:
            return None
        spent = dataclasses.replace(row, spent_at=now)
        self._set(token_hash, spent)
        return spent

    async def revoke_family(self, family_id: uuid.UUID, *, now: dt.datetime) -> int:
        live = [
            (token_hash, row)
            for token_hash, row in self._store.rows.items()
            if row.family_id == family_id and row.revoked_at is None
        ]
        for token_hash, row in live:
            self._set(token_hash, dataclasses.replace(row, revoked_at=now))
        return len(live)

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        rows = self._store.rows
        expired = [token_hash for token_hash, row in rows.items() if row.expires_at <= now]
        purged = expired[:batch]
        for token_hash in purged:
            self._set(token_hash, None)
        return len(purged)

    def _set(self, token_hash: str, row: RefreshTokenRecord | None) -> None:
        before = self._store.rows.get(token_hash)
        if row is None:
            self._store.rows.pop(token_hash, None)
        else:
            self._store.rows[token_hash] = row

        def undo() -> None:
            if before is None:
                self._store.rows.pop(token_hash, None)
            else:
                self._store.rows[token_hash] = before

        self._undo.append(undo)

    def committed(self) -> None:
        self._undo.clear()

    def rolled_back(self) -> None:
        while self._undo:
            self._undo.pop()()
