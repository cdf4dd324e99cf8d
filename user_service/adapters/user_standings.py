"""The reads of one user by id, one row, no transaction: the ``UserStandings`` port (behind
every ``verify_user`` on a cache miss) and the ``UserProfiles`` port (behind ``GET
/users/me``). On any database through a session, on Postgres straight on asyncpg, and for
standings a memory of both kept right by the database's change notifications."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.postgres import AsyncpgStatement, PostgresLookups
from user_service.domain import User, UserStanding
from user_service.repositories.user_repository import BY_ID, STANDING_BY_ID, UserRepository


class _Standings(Protocol):
    async def get(self, user_id: uuid.UUID) -> UserStanding | None: ...


class SqlUserStandings:
    """On any database the engine speaks: a session of its own per read."""

    def __init__(self, lookups: async_sessionmaker[AsyncSession]) -> None:
        self._lookups = lookups

    async def get(self, user_id: uuid.UUID) -> UserStanding | None:
        async with self._lookups() as session:
            return await UserRepository(session).get_standing(user_id)


_STANDING = AsyncpgStatement(STANDING_BY_ID)


class PostgresUserStandings:
    """On Postgres: the statement straight on asyncpg, prepared once per connection, which
    costs a fraction of a read through a session (docs/benchmarks.md, change 21)."""

    def __init__(self, lookups: PostgresLookups) -> None:
        self._lookups = lookups

    async def get(self, user_id: uuid.UUID) -> UserStanding | None:
        row = await self._lookups.fetch_row(_STANDING.sql, *_STANDING.args(user_id=user_id))
        return None if row is None else UserStanding(row[0], row[1], row[2], row[3], row[4])


class SqlUserProfiles:
    """On any database the engine speaks: a session of its own per read."""

    def __init__(self, lookups: async_sessionmaker[AsyncSession]) -> None:
        self._lookups = lookups

    async def get(self, user_id: uuid.UUID) -> User | None:
        async with self._lookups() as session:
            return await UserRepository(session).get(user_id)


_PROFILE = AsyncpgStatement(BY_ID)


class PostgresUserProfiles:
    """On Postgres: the repository's statement straight on asyncpg, as for standings."""

    def __init__(self, lookups: PostgresLookups) -> None:
        self._lookups = lookups

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = await self._lookups.fetch_row(_PROFILE.sql, *_PROFILE.args(user_id=user_id))
        return None if row is None else User(**dict(row.items()))


# Sent by the database (migration 0002) with the user's id whenever a row of user_account
# changes, at commit.
USER_CHANGES_CHANNEL = "user_account_changed"
USER_CHANGES_SENDER_EXISTS = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'user_account_changed' AND NOT tgisinternal"
    " AND tgenabled <> 'D' AND tgrelid = 'user_account'::regclass"
)


class RememberedUserStandings:
    """Answers again from memory what it read before, while ``live()`` says that every
    change to a user will be notified (``changed``); it forgets everything when that
    promise was broken (``forget_all``).

    A read that was in flight when any change arrived is returned but not kept: it may
    predate the change. The memory is consulted only on a miss of ``user:{id}``, which a
    deactivation overwrites before it commits; what is left is the moment between another
    replica's commit and its notification arriving here, as with a read that began just
    before that commit. ``capacity`` bounds the memory; the oldest entry goes first."""

    def __init__(
        self, inner: _Standings, *, live: Callable[[], bool], capacity: int = 100_000
    ) -> None:
        self._inner = inner
        self._live = live
        self._capacity = capacity
        self._standings: dict[uuid.UUID, UserStanding] = {}
        self._changes = 0  # counts every change heard, so a read can tell one happened

    async def get(self, user_id: uuid.UUID) -> UserStanding | None:
        if self._live():
            known = self._standings.get(user_id)
            if known is not None:
                return known
        changes = self._changes
        standing = await self._inner.get(user_id)
        if standing is not None and self._changes == changes and self._live():
            if len(self._standings) >= self._capacity:
                del self._standings[next(iter(self._standings))]
            self._standings[user_id] = standing
        return standing

    def changed(self, payload: str) -> None:
        self._changes += 1
        try:
            self._standings.pop(uuid.UUID(payload), None)
        except ValueError:
            self._standings.clear()

    def forget_all(self) -> None:
        self._changes += 1
        self._standings.clear()

    def __len__(self) -> int:
        return len(self._standings)
