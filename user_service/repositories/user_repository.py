"""SQL for users, and nothing else. Never commits; driver errors go up to the unit of work.

Core statements returning plain ``domain`` values: no ORM identity map, no instances to
track. The selects are built once."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from user_service.domain import User, UserStanding
from user_service.models import user_account as t

BY_ID = select(t).where(t.c.id == bindparam("user_id"))
_BY_EMAIL = select(t).where(t.c.email == bindparam("email"))
_INSERT = insert(t)
# What other services may know of a user, by id: the read behind ``verify_user``.
STANDING_BY_ID = select(t.c.id, t.c.email, t.c.is_active, t.c.version, t.c.session_epoch).where(
    t.c.id == bindparam("user_id")
)


def _user(row: Row[Any] | None) -> User | None:
    return None if row is None else User(**row._mapping)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        connection = await self._session.connection()
        return _user((await connection.execute(BY_ID, {"user_id": user_id})).first())

    async def get_by_email(self, email: str) -> User | None:
        connection = await self._session.connection()
        return _user((await connection.execute(_BY_EMAIL, {"email": email})).first())

    async def get_standing(self, user_id: uuid.UUID) -> UserStanding | None:
        connection = await self._session.connection()
        row = (await connection.execute(STANDING_BY_ID, {"user_id": user_id})).first()
        if row is None:
            return None
        return UserStanding(row.id, row.email, row.is_active, row.version, row.session_epoch)

    async def add(self, user: User) -> None:
        """Raises the driver's IntegrityError if the email is taken."""
        connection = await self._session.connection()
        await connection.execute(
            _INSERT,
            {
                "id": user.id,
                "email": user.email,
                "full_name": user.full_name,
                "password_hash": user.password_hash,
                "is_active": user.is_active,
                "version": user.version,
                "created_at": user.created_at,
                "updated_at": user.updated_at,
                "session_epoch": user.session_epoch,
            },
        )

    async def update(self, user: User, *, seen_version: int) -> bool:
        """Writes ``user``'s changeable columns and version if the row still has
        ``seen_version``; whether it did."""
        connection = await self._session.connection()
        result = await connection.execute(
            update(t)
            .where(t.c.id == user.id, t.c.version == seen_version)
            .values(
                full_name=user.full_name,
                password_hash=user.password_hash,
                is_active=user.is_active,
                updated_at=user.updated_at,
                version=user.version,
                session_epoch=user.session_epoch,
            )
        )
        return result.rowcount == 1
