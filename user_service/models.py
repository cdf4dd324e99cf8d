"""The User Service's tables (SQLAlchemy Core), as its migrations create them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, String, Table, Uuid

from servicekit.database import UtcDateTime, new_metadata

metadata = new_metadata()

user_account = Table(
    "user_account",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("full_name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("is_active", Boolean, nullable=False),
    # Every change bumps it, on the condition that it still holds the value the writer read.
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
