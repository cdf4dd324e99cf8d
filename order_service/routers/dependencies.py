"""Annotated dependencies of the Order Service's routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from order_service.core.state import OrderServiceState
from servicekit.errors import InvalidToken
from servicekit.tokens import AccessClaims
from servicekit.web import bearer_claims

STATE_KEY = "order_service"


def state_of(request: Request) -> OrderServiceState:
    state: OrderServiceState = getattr(request.state, STATE_KEY)
    return state


# Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop on every request for a few attribute reads.
async def get_state(request: Request) -> OrderServiceState:
    return state_of(request)


State = Annotated[OrderServiceState, Depends(get_state)]


async def token_user_id(
    claims: Annotated[
        AccessClaims,
        Depends(bearer_claims(lambda r: state_of(r).token_verifier, token_url="/auth/token")),
    ],
) -> uuid.UUID:
    try:
        return uuid.UUID(claims.subject)
    except ValueError:
        raise InvalidToken() from None


TokenUserId = Annotated[uuid.UUID, Depends(token_user_id)]
