"""The User Service's tables."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Boolean, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.database import UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Raised by every change that ends the user's sessions (password change, deactivation):
    # access and refresh tokens of a lower epoch are refused.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Every UPDATE bumps the version and checks the old one: concurrent writes cannot both win,
    # and the cached copy under user:{id} can tell an old value from a new one.
    __mapper_args__ = {"version_id_col": version}


@dataclass(frozen=True, slots=True)
class UserState:
    """What other services may know of a user (the ``user:{id}`` entry), read without the
    ORM: the answer to ``verify_user`` on every cache miss."""

    id: uuid.UUID
    email: str
    is_active: bool
    version: int
    session_epoch: int = 0


class RefreshToken(Base):
    """A refresh token, known only by its SHA-256 (the token itself is 256 random bits, so a
    plain digest cannot be reversed). Each use spends it and adds its successor to the same
    family; the family is what reuse, logout and a change of the user revoke."""

    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(100))
    session_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    spent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A row of ``refresh_token`` as the use cases see it."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    session_epoch: int
    expires_at: dt.datetime
    spent_at: dt.datetime | None
    revoked_at: dt.datetime | None
