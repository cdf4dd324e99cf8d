"""The unit of work on SQL (SQLite or Postgres through SQLAlchemy), with the user repository
behind the ``Users`` port: driver errors become the service's own."""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.database import SqlUnitOfWork
from user_service.domain import User
from user_service.errors import ConcurrentUpdate, EmailAlreadyRegistered
from user_service.repositories.refresh_token_repository import RefreshTokenRepository
from user_service.repositories.user_repository import UserRepository


class SqlUsers:
    def __init__(self, session: AsyncSession) -> None:
        self._repository = UserRepository(session)

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._repository.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self._repository.get_by_email(email)

    async def add(self, user: User) -> None:
        try:
            await self._repository.add(user)
        except IntegrityError:
            raise EmailAlreadyRegistered() from None

    async def save(self, user: User) -> User:
        stored = dataclasses.replace(user, version=user.version + 1)
        if not await self._repository.update(stored, seen_version=user.version):
            raise ConcurrentUpdate()
        return stored


class SqlUserUnitOfWork(SqlUnitOfWork):
    users: SqlUsers
    refresh_tokens: RefreshTokenRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.users = SqlUsers(session)
        self.refresh_tokens = RefreshTokenRepository(session)
