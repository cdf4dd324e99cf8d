"""The order unit of work over SQLAlchemy: one session, its repositories, rolled back unless
committed. A fault of the database leaves it as the kit's ``DependencyUnavailable``."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.repositories.idempotency_repository import IdempotencyRepository
from order_service.repositories.order_repository import OrderRepository
from servicekit.database import SqlUnitOfWork
from servicekit.errors import DependencyUnavailable
from servicekit.faults import is_dependency_fault


class SqlOrderUnitOfWork(SqlUnitOfWork):
    orders: OrderRepository
    idempotency: IdempotencyRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.orders = OrderRepository(session)
        self.idempotency = IdempotencyRepository(session)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        if (
            exc is not None
            and is_dependency_fault(exc)
            and not isinstance(exc, DependencyUnavailable)
        ):
            raise DependencyUnavailable("the order database did not answer") from exc
