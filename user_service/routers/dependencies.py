"""Annotated dependencies of the User Service's routes."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicekit.web import Caller, caller_auth
from user_service.core.state import UserServiceState
from user_service.errors import InvalidServiceCredential

STATE_KEY = "user_service"


def state_of(request: Request) -> UserServiceState:
    state: UserServiceState = getattr(request.state, STATE_KEY)
    return state


# Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop on every request for a few attribute reads.
async def get_state(request: Request) -> UserServiceState:
    return state_of(request)


State = Annotated[UserServiceState, Depends(get_state)]


Authenticated = Annotated[
    Caller[UserServiceState], Depends(caller_auth(state_of, token_url="/auth/token"))
]

_service_bearer = HTTPBearer(auto_error=False, scheme_name="ServiceCredential")


async def require_service_credential(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_service_bearer)],
) -> None:
    expected = state.settings.internal_api_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise InvalidServiceCredential()
