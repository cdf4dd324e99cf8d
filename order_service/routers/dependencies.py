"""Annotated dependencies of the Order Service's routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from order_service.core.config import OrderSettings
from order_service.core.metrics import OrderMetrics
from order_service.domain import RenderedOrder
from order_service.services.ports import (
    OrderUnitOfWork,
    OrderViews,
    OrderWriter,
    UserVerifier,
)
from servicekit.tokens import TokenVerifier
from servicekit.uow import UnitOfWorkFactory
from servicekit.web import BearerAuth, Caller

STATE_KEY = "order_service"


@dataclass(frozen=True)
class OrderServiceState:
    """What the routes get from the composition root, typed."""

    settings: OrderSettings
    new_uow: UnitOfWorkFactory[OrderUnitOfWork]
    views: OrderViews[RenderedOrder]
    users: UserVerifier
    writer: OrderWriter
    token_verifier: TokenVerifier
    metrics: OrderMetrics = field(default_factory=OrderMetrics.off)


def state_of(request: Request) -> OrderServiceState:
    state: OrderServiceState = getattr(request.state, STATE_KEY)
    return state


# The token is checked here; whether its user may still act is the service's question.
Authenticated = Annotated[
    Caller[OrderServiceState], Depends(BearerAuth(token_url="/auth/token", state_of=state_of))
]
