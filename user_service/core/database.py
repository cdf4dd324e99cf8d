"""The User Service's database: its unit of work and its migrations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.database import SqlUnitOfWork
from user_service.repositories.refresh_token_repository import RefreshTokenRepository
from user_service.repositories.user_repository import UserRepository

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "user_service_alembic_version"


class UserUnitOfWork(SqlUnitOfWork):
    users: UserRepository
    refresh_tokens: RefreshTokenRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
