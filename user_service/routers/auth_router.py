"""Log in (OAuth2 password flow), publish the token keys, answer other services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from contracts import INTERNAL_VERIFICATION_PATH, JWKS_PATH
from servicekit.text import PlainText
from servicekit.web import problem_responses
from user_service.routers.dependencies import State, require_service_credential
from user_service.schemas import AccessToken, JsonWebKeySet, UserVerificationRead
from user_service.services import login, verification

router = APIRouter()


@router.post(
    "/auth/token", tags=["auth"], operation_id="log_in", responses=problem_responses(401, 429)
)
async def log_in(
    state: State,
    request: Request,
    response: Response,
    # Control characters are a 422 here; any other text that is no address is a 401.
    username: Annotated[str, Form(max_length=320), PlainText(strip=False)],
    password: Annotated[str, Form(max_length=1024)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    scope: Annotated[str, Form(max_length=1000)] = "",
) -> AccessToken:
    settings = state.settings
    issued = await login.log_in(
        state.new_uow(),
        state.cache,
        state.hasher,
        state.issuer,
        state.limiter,
        email=username,
        password=password,
        client_id=client_id or "public",
        # The peer of the connection. Behind a reverse proxy this is the proxy: it would need
        # trusted-proxy handling (e.g. uvicorn --forwarded-allow-ips); X-Forwarded-For from
        # anyone else is never trusted.
        client_address=request.client.host if request.client else "unknown",
        limits=login.LoginLimits(
            max_failures_per_account=settings.login_max_failures_per_account,
            window_seconds=settings.login_window_seconds,
            max_attempts_per_address=settings.login_max_attempts_per_address,
            address_window_seconds=settings.login_address_window_seconds,
        ),
    )
    response.headers["Cache-Control"] = "no-store"
    return AccessToken(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get(JWKS_PATH, tags=["auth"], operation_id="read_jwks")
async def read_jwks(state: State, response: Response) -> JsonWebKeySet:
    response.headers["Cache-Control"] = "public, max-age=300"
    return JsonWebKeySet(keys=[key.public_jwk() for key in state.signing_keys])


@router.get(
    INTERNAL_VERIFICATION_PATH,
    tags=["internal"],
    operation_id="verify_user",
    dependencies=[Depends(require_service_credential)],
    responses=problem_responses(401),
)
async def verify_user(user_id: uuid.UUID, state: State) -> UserVerificationRead:
    standing = await verification.verify_user(state.user_standings, state.cache, user_id=user_id)
    return UserVerificationRead(
        user_id=user_id,
        exists=standing is not None,
        active=standing is not None and standing.is_active,
    )
