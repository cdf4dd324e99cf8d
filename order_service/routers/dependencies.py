"""Annotated dependencies of the Order Service's routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from order_service.core.state import OrderServiceState
from servicekit.tokens import AccessClaims
from servicekit.web import BearerAuth, user_id_of

STATE_KEY = "order_service"


def state_of(request: Request) -> OrderServiceState:
    state: OrderServiceState = getattr(request.state, STATE_KEY)
    return state


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls (the token's user) and the service's parts, resolved once per request."""

    state: OrderServiceState
    user_id: uuid.UUID


def _caller(request: Request, claims: AccessClaims) -> Caller:
    return Caller(state_of(request), user_id_of(claims))


# The token is checked here; whether its user may still act is the service's question.
Authenticated = Annotated[
    Caller,
    Depends(
        BearerAuth(
            token_url="/auth/token",
            verifier_of=lambda request: state_of(request).token_verifier,
            principal=_caller,
        )
    ),
]
