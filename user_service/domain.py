"""The User Service's plain data: no I/O, no driver, no framework."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    """An account as the use cases see it. ``version`` starts at 1 and grows by one with every
    stored change: a write made on an older version is refused, and the cached copy under
    ``user:{id}`` can tell an old value from a new one. A change is a new value
    (``dataclasses.replace``) handed to the unit of work's ``users.save``."""

    id: uuid.UUID
    email: str
    full_name: str
    password_hash: str
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    # Raised by every change that ends the user's sessions (a password change, a
    # deactivation): access and refresh tokens of a lower epoch are refused.
    session_epoch: int = 0

    @property
    def standing(self) -> UserStanding:
        return UserStanding(self.id, self.email, self.is_active, self.version, self.session_epoch)


@dataclass(frozen=True, slots=True)
class UserStanding:
    """What other services may know of a user: the ``user:{id}`` entry, and the answer to
    ``verify_user`` (a user with no standing does not exist)."""

    id: uuid.UUID
    email: str
    is_active: bool
    version: int
    session_epoch: int = 0


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A refresh token as the use cases see it (the token itself is never stored: only its
    SHA-256). Each use spends it and adds its successor to the same family; the family is
    what reuse, logout and a change of the user revoke."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    session_epoch: int
    expires_at: dt.datetime
    spent_at: dt.datetime | None
    revoked_at: dt.datetime | None
