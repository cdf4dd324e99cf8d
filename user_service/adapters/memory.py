"""In-memory twins of the User Service's unit of work and user standings: the same rules as
the SQL ones (unique email, a version that grows with every change and refuses a write made
on an older one, nothing kept unless committed), for tests of the use cases with no I/O."""

from __future__ import annotations

import dataclasses
import uuid
from types import TracebackType
from typing import Self

from user_service.adapters.refresh_tokens import (
    InMemoryRefreshTokenRepository,
    RefreshTokenStore,
)
from user_service.domain import User, UserStanding
from user_service.errors import ConcurrentUpdate, EmailAlreadyRegistered


class InMemoryUserDatabase:
    """The committed users; called like a unit-of-work factory (``state.new_uow``)."""

    def __init__(self) -> None:
        self.users: dict[uuid.UUID, User] = {}
        self.refresh_tokens = RefreshTokenStore()
        self.commits = 0

    def __call__(self, *, read_only: bool = False) -> InMemoryUserUnitOfWork:
        return InMemoryUserUnitOfWork(self)


class InMemoryUsers:
    """The users as one transaction sees them: committed rows, then its own writes."""

    def __init__(self, database: InMemoryUserDatabase) -> None:
        self._database = database
        self.written: dict[uuid.UUID, User] = {}

    def _current(self, user_id: uuid.UUID) -> User | None:
        return self.written.get(user_id) or self._database.users.get(user_id)

    async def get(self, user_id: uuid.UUID) -> User | None:
        return self._current(user_id)

    async def get_by_email(self, email: str) -> User | None:
        for user_id in self._database.users.keys() | self.written.keys():
            user = self._current(user_id)
            if user is not None and user.email == email:
                return user
        return None

    async def add(self, user: User) -> None:
        if user.id in self._database.users or await self.get_by_email(user.email) is not None:
            raise EmailAlreadyRegistered()
        self.written[user.id] = user

    async def save(self, user: User) -> User:
        current = self._current(user.id)
        if current is None or current.version != user.version:
            raise ConcurrentUpdate()
        stored = dataclasses.replace(user, version=user.version + 1)
        self.written[user.id] = stored
        return stored


class InMemoryUserUnitOfWork:
    users: InMemoryUsers
    refresh_tokens: InMemoryRefreshTokenRepository

    def __init__(self, database: InMemoryUserDatabase) -> None:
        self._database = database

    async def __aenter__(self) -> Self:
        self.users = InMemoryUsers(self._database)
        self.refresh_tokens = InMemoryRefreshTokenRepository(self._database.refresh_tokens)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.users.written.clear()  # rolled back unless committed
        self.refresh_tokens.rolled_back()

    async def commit(self) -> None:
        for user_id, user in self.users.written.items():
            committed = self._database.users.get(user_id)
            # What a row lock and the version condition do in SQL: the first commit wins.
            if committed is not None and committed.version >= user.version:
                raise ConcurrentUpdate()
            if committed is None and any(
                other.email == user.email for other in self._database.users.values()
            ):
                raise EmailAlreadyRegistered()
        self._database.users.update(self.users.written)
        self.users.written.clear()
        self.refresh_tokens.committed()
        self._database.commits += 1


class InMemoryUserProfiles:
    """The ``UserProfiles`` port read from an in-memory database."""

    def __init__(self, database: InMemoryUserDatabase) -> None:
        self._database = database

    async def get(self, user_id: uuid.UUID) -> User | None:
        return self._database.users.get(user_id)


class InMemoryUserStandings:
    """The ``UserStandings`` port read from an in-memory database."""

    def __init__(self, database: InMemoryUserDatabase) -> None:
        self._database = database

    async def get(self, user_id: uuid.UUID) -> UserStanding | None:
        user = self._database.users.get(user_id)
        return None if user is None else user.standing
