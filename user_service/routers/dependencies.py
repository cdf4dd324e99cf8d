"""What the User Service's entrypoints get from its composition root, typed, and the
annotated dependencies of its routes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicekit.cache import Cache
from servicekit.ratelimit import RateLimiter
from servicekit.tokens import TokenVerifier
from servicekit.uow import UnitOfWorkFactory
from servicekit.web import BearerAuth, Caller
from user_service.core.auth import PasswordHasher, SigningKey, TokenIssuer
from user_service.core.config import UserSettings
from user_service.core.metrics import UserMetrics
from user_service.errors import InvalidServiceCredential
from user_service.services.ports import UserProfiles, UserStandings, UserUnitOfWork

STATE_KEY = "user_service"


@dataclass(frozen=True)
class UserServiceState:
    settings: UserSettings
    new_uow: UnitOfWorkFactory[UserUnitOfWork]
    user_standings: UserStandings
    profiles: UserProfiles
    cache: Cache
    hasher: PasswordHasher
    limiter: RateLimiter
    issuer: TokenIssuer
    token_verifier: TokenVerifier
    signing_keys: tuple[SigningKey, ...]
    metrics: UserMetrics = field(default_factory=UserMetrics.off)


def state_of(request: Request) -> UserServiceState:
    state: UserServiceState = getattr(request.state, STATE_KEY)
    return state


# Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop on every request for a few attribute reads.
async def get_state(request: Request) -> UserServiceState:
    return state_of(request)


State = Annotated[UserServiceState, Depends(get_state)]


Authenticated = Annotated[
    Caller[UserServiceState], Depends(BearerAuth(token_url="/auth/token", state_of=state_of))
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
