"""Every port the User Service's use cases depend on, beside the kit's (``Cache``,
``RateLimiter``, ``UnitOfWork``). Their adapters live in ``user_service.adapters``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from servicekit.uow import UnitOfWork
from user_service.domain import RefreshTokenRecord, User, UserStanding


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


class RefreshTokens(Protocol):
    """The refresh tokens, by the SHA-256 of the token; ``spend`` is atomic: of two units of
    work spending one token, at most one gets it back."""

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
    ) -> None: ...

    async def get_by_hash(self, token_hash: str) -> RefreshTokenRecord | None: ...

    async def spend(self, token_hash: str, *, now: dt.datetime) -> RefreshTokenRecord | None:
        """The token, marked spent, if it was live (not spent, revoked or expired)."""
        ...

    async def revoke_family(self, family_id: uuid.UUID, *, now: dt.datetime) -> int: ...

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        """Delete up to ``batch`` tokens expired by ``now`` (spent, revoked or neither);
        returns how many."""
        ...


class UserUnitOfWork(UnitOfWork, Protocol):
    @property
    def users(self) -> Users: ...

    @property
    def refresh_tokens(self) -> RefreshTokens: ...


class UserStandings(Protocol):
    """The read behind every ``verify_user`` on a cache miss: one row, no transaction."""

    async def get(self, user_id: uuid.UUID) -> UserStanding | None: ...


class UserProfiles(Protocol):
    """The read behind ``GET /users/me``: one user by id, one row, no transaction."""

    async def get(self, user_id: uuid.UUID) -> User | None: ...
