"""Every port the User Service's use cases depend on, beside the kit's (``Cache``,
``RateLimiter``, ``UnitOfWork``). Their adapters live in ``user_service.adapters``."""

from __future__ import annotations

import uuid
from typing import Protocol

from servicekit.uow import UnitOfWork
from user_service.domain import User, UserStanding


class Users(Protocol):
    async def get(self, user_id: uuid.UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """``email`` in its canonical form (``core.emails.normalize_email``)."""
        ...

    async def add(self, user: User) -> None:
        """Raises ``EmailAlreadyRegistered`` if another user has the email."""
        ...

    async def save(self, user: User) -> User:
        """Stores a change of a user read at ``user.version``; returns it at its new version.
        Raises ``ConcurrentUpdate`` if the stored user is no longer at that version. The
        change is written (and its row locked) at once, and kept if the unit of work
        commits."""
        ...


class UserUnitOfWork(UnitOfWork, Protocol):
    @property
    def users(self) -> Users: ...


class UserStandings(Protocol):
    """The read behind every ``verify_user`` on a cache miss: one row, no transaction."""

    async def get(self, user_id: uuid.UUID) -> UserStanding | None: ...
