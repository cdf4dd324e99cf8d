"""SQL for users, and nothing else. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import asyncpg as postgres
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.postgres import PostgresLookups
from user_service.errors import EmailAlreadyRegistered
from user_service.models import User, UserState

_STATE = cast(Table, User.__table__)
_STATE_OF = select(
    _STATE.c.id, _STATE.c.email, _STATE.c.is_active, _STATE.c.version, _STATE.c.session_epoch
).where(_STATE.c.id == bindparam("user_id"))


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def state(self, user_id: uuid.UUID) -> UserState | None:
        """One Core statement on the session's connection, built once: no ORM identity map,
        no instance to build (a verification on a cache miss: 310 -> 200 us, measured here)."""
        connection = await self._session.connection()
        row = (await connection.execute(_STATE_OF, {"user_id": user_id})).first()
        if row is None:
            return None
        return UserState(row.id, row.email, row.is_active, row.version, row.session_epoch)

    async def get_by_email(self, email: str) -> User | None:
        result = await self._session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> None:
        self._session.add(user)
        try:
            await self._session.flush()
        except IntegrityError:
            raise EmailAlreadyRegistered() from None


class UserStates(Protocol):
    """The read behind every ``verify_user`` on a cache miss: one row, no transaction."""

    async def state(self, user_id: uuid.UUID) -> UserState | None: ...


class SessionUserStates:
    """On any database the engine speaks: a session of its own per read."""

    def __init__(self, lookups: async_sessionmaker[AsyncSession]) -> None:
        self._lookups = lookups

    async def state(self, user_id: uuid.UUID) -> UserState | None:
        async with self._lookups() as session:
            return await UserRepository(session).state(user_id)


# The same statement, compiled once for asyncpg's own placeholders.
_STATE_OF_SQL = str(_STATE_OF.compile(dialect=postgres.dialect()))  # type: ignore[no-untyped-call]


class PostgresUserStates:
    """On Postgres: the statement straight on asyncpg, prepared once per connection (a read
    through a session costs 500 us, this one 120; docs/benchmarks.md)."""

    def __init__(self, lookups: PostgresLookups) -> None:
        self._lookups = lookups

    async def state(self, user_id: uuid.UUID) -> UserState | None:
        row = await self._lookups.fetch_row(_STATE_OF_SQL, user_id)
        return None if row is None else UserState(row[0], row[1], row[2], row[3], row[4])


# Sent by the database (migration 0002) with the user's id whenever a row of user_account
# changes, at commit.
USER_CHANGES_CHANNEL = "user_account_changed"
USER_CHANGES_SENDER_EXISTS = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'user_account_changed' AND NOT tgisinternal"
    " AND tgenabled <> 'D' AND tgrelid = 'user_account'::regclass"
)


class RememberedUserStates:
    """Answers again from memory what it read before, while ``live()`` says that every
    change to a user will be notified (``changed``); it forgets everything when that
    promise was broken (``forget_all``).

    A read that was in flight when any change arrived is returned but not kept: it may
    predate the change. The memory is consulted only on a miss of ``user:{id}``, which a
    deactivation overwrites before it commits; what is left is the moment between another
    replica's commit and its notification arriving here, as with a read that began just
    before that commit. ``capacity`` bounds the memory; the oldest entry goes first."""

    def __init__(
        self, inner: UserStates, *, live: Callable[[], bool], capacity: int = 100_000
    ) -> None:
        self._inner = inner
        self._live = live
        self._capacity = capacity
        self._states: dict[uuid.UUID, UserState] = {}
        self._changes = 0  # counts every change heard, so a read can tell one happened

    async def state(self, user_id: uuid.UUID) -> UserState | None:
        if self._live():
            known = self._states.get(user_id)
            if known is not None:
                return known
        changes = self._changes
        state = await self._inner.state(user_id)
        if state is not None and self._changes == changes and self._live():
            if len(self._states) >= self._capacity:
                del self._states[next(iter(self._states))]
            self._states[user_id] = state
        return state

    def changed(self, payload: str) -> None:
        self._changes += 1
        try:
            self._states.pop(uuid.UUID(payload), None)
        except ValueError:
            self._states.clear()

    def forget_all(self) -> None:
        self._changes += 1
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)
