"""Every port the order use cases depend on: protocols only, their adapters live in
``order_service.adapters``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol, TypeVar

from order_service.domain import IdempotencyRecordData, OrderData, UserStanding
from servicekit.uow import UnitOfWork


class OrderView(Protocol):
    """What the use cases need of an order they show: the (created_at, id) of a cursor."""

    @property
    def created_at(self) -> dt.datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


ViewT = TypeVar("ViewT", bound=OrderView)


class OrderViews(Protocol[ViewT]):
    """Committed orders, each read one statement on its own, outside any transaction, as
    some ``OrderView``: the read paths (a page of orders, one order), which need nothing
    else to hold still."""

    async def get_for_user(self, order_id: uuid.UUID, user_id: uuid.UUID) -> ViewT | None:
        """The user's order, or None (also when it is another user's)."""

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> list[ViewT]:
        """Newest first; ``before`` is the (created_at, id) of the last order already seen."""


class OrderReads(OrderViews[OrderData], Protocol):
    """The orders as ``OrderData``: what the single process renders with ``OrderRead``."""


class OrderRepository(OrderReads, Protocol):
    """The reads of ``OrderReads`` inside a transaction, and what changes an order."""

    async def get_for_update(self, order_id: uuid.UUID, user_id: uuid.UUID) -> OrderData | None:
        """As ``get_for_user``, and nobody else changes it until this transaction ends."""

    async def update_status(
        self, order_id: uuid.UUID, *, status: str, updated_at: dt.datetime
    ) -> None: ...


class IdempotencyRepository(Protocol):
    async def get(self, user_id: uuid.UUID, key: str) -> IdempotencyRecordData | None: ...

    async def purge_expired(self, now: dt.datetime, *, batch: int = 1000) -> int:
        """Delete up to ``batch`` records past their expiry; returns how many."""


class OrderUnitOfWork(UnitOfWork, Protocol):
    """One transaction over the order database, rolled back unless committed."""

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...


class OrderWriter(Protocol):
    """The one way a new order is written, with its Idempotency-Key record if it has one."""

    async def write(self, order: OrderData, record: IdempotencyRecordData | None = None) -> bool:
        """Returns once ``order`` (and ``record``) are committed: True. False when the key of
        ``record`` is held by another order, committed and unexpired or still in flight:
        then nothing was written. Raises what the transaction raised."""


class UserVerifier(Protocol):
    """Whether a user exists and may act. Raises ``UserVerificationUnavailable`` when no
    path could answer."""

    async def verify(self, user_id: uuid.UUID) -> UserStanding: ...
