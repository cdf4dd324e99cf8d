"""What the Order Service's entrypoints get from its composition root, typed."""

from __future__ import annotations

from dataclasses import dataclass

from order_service.core.config import OrderSettings
from order_service.core.database import OrderUnitOfWork
from order_service.core.user_verification import UserVerifier
from order_service.repositories.order_writer import OrderWriter
from servicekit.tokens import TokenVerifier
from servicekit.uow import UnitOfWorkFactory


@dataclass(frozen=True)
class OrderServiceState:
    settings: OrderSettings
    new_uow: UnitOfWorkFactory[OrderUnitOfWork]
    users: UserVerifier
    writer: OrderWriter
    token_verifier: TokenVerifier
