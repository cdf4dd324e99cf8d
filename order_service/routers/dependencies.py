"""Annotated dependencies of the Order Service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from order_service.core.state import OrderServiceState
from servicekit.web import Caller, caller_auth

STATE_KEY = "order_service"


def state_of(request: Request) -> OrderServiceState:
    state: OrderServiceState = getattr(request.state, STATE_KEY)
    return state


# The token is checked here; whether its user may still act is the service's question.
Authenticated = Annotated[
    Caller[OrderServiceState], Depends(caller_auth(state_of, token_url="/auth/token"))
]
