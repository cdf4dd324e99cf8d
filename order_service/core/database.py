"""The Order Service's database: its unit of work, key locks and migrations."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.repositories.idempotency_repository import IdempotencyRepository, KeyLocks
from order_service.repositories.order_repository import OrderRepository
from servicekit.database import SqlUnitOfWork

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "order_service_alembic_version"


class OrderUnitOfWork(SqlUnitOfWork):
    orders: OrderRepository
    idempotency: IdempotencyRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession], locks: KeyLocks) -> None:
        super().__init__(sessions)
        self._locks = locks

    def open_repositories(self, session: AsyncSession) -> None:
        self.orders = OrderRepository(session)
        self.idempotency = IdempotencyRepository(session, self._locks)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        finally:
            self.idempotency.release_locks()
