"""The order use cases over the in-memory twins: no database, no bus, no network."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from order_service.adapters.memory import (
    InMemoryOrderReads,
    InMemoryOrderStore,
    InMemoryOrderUnitOfWork,
    InMemoryOrderWriter,
)
from order_service.domain import UserStanding
from order_service.errors import UserVerificationUnavailable


@dataclass
class Standings:
    """The user-verifier port's twin: active users, deactivated ones, and an outage switch."""

    active: set[uuid.UUID] = field(default_factory=set)
    inactive: set[uuid.UUID] = field(default_factory=set)
    unavailable: bool = False
    session_epochs: dict[uuid.UUID, int] = field(default_factory=dict)

    def add_user(self) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.active.add(user_id)
        return user_id

    async def verify(self, user_id: uuid.UUID) -> UserStanding:
        if self.unavailable:
            raise UserVerificationUnavailable()
        known = user_id in self.active or user_id in self.inactive
        return UserStanding(
            exists=known,
            active=user_id in self.active,
            source="test",
            session_epoch=self.session_epochs.get(user_id, 0),
        )


@dataclass
class Orders:
    store: InMemoryOrderStore
    writer: InMemoryOrderWriter
    users: Standings

    def uow(self) -> InMemoryOrderUnitOfWork:
        return InMemoryOrderUnitOfWork(self.store)

    def reads(self) -> InMemoryOrderReads:
        return InMemoryOrderReads(self.store)


@pytest.fixture
def orders() -> Orders:
    store = InMemoryOrderStore()
    return Orders(store=store, writer=InMemoryOrderWriter(store), users=Standings())
