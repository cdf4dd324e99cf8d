"""The User Service's tables (SQLAlchemy Core), as its migrations create them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, Uuid

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
    # Raised by a password change and a deactivation: tokens of a lower epoch are refused.
    Column("session_epoch", Integer, nullable=False, server_default="0"),
)

# A refresh token, known only by its SHA-256 (the token is 256 random bits, so a plain digest
# cannot be turned back into it), in the family of the login it descends from.
refresh_token = Table(
    "refresh_token",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("family_id", Uuid, nullable=False, index=True),
    Column(
        "user_id",
        Uuid,
        ForeignKey("user_account.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("client_id", String(100), nullable=False),
    Column("session_epoch", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("spent_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)
