"""The unit-of-work port: one transaction, rolled back unless committed. Services depend on
this; ``servicekit.database.SqlUnitOfWork`` is its SQL adapter, and each service keeps an
in-memory twin beside its own."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, TypeVar


class UnitOfWork(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


U_co = TypeVar("U_co", bound=UnitOfWork, covariant=True)


class UnitOfWorkFactory(Protocol[U_co]):
    """Makes a unit of work; a ``read_only`` one only reads, one statement at a time."""

    def __call__(self, *, read_only: bool = False) -> U_co: ...
