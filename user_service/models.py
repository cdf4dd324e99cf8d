"""The User Service's tables."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Boolean, Integer, String, Uuid
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
