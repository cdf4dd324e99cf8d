"""Log in (OAuth2 password flow), publish the token keys, answer other services."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from contracts import INTERNAL_VERIFICATION_PATH, JWKS_PATH
from servicekit.errors import AppError, ServiceUnavailable, TooManyRequests
from servicekit.text import PlainText
from servicekit.web import problem_responses
from user_service.core.config import UserSettings
from user_service.errors import InvalidTokenRequest
from user_service.routers.dependencies import State, require_service_credential
from user_service.schemas import AccessToken, JsonWebKeySet, UserVerificationRead
from user_service.services import login, sessions, verification

router = APIRouter()


@router.post(
    "/auth/token",
    tags=["auth"],
    operation_id="log_in",
    responses=problem_responses(400, 401, 429),
)
async def log_in(
    state: State,
    request: Request,
    response: Response,
    grant_type: Annotated[str | None, Form(pattern="^(password|refresh_token)$")] = None,
    # Control characters are a 422 here; any other text that is no address is a 401.
    username: Annotated[Annotated[str, PlainText(strip=False)] | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=1024)] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    scope: Annotated[str, Form(max_length=1000)] = "",
) -> AccessToken:
    """The OAuth 2.0 token endpoint: the password grant (the default) opens a session, the
    refresh_token grant rotates its refresh token (RFC 6749 sections 4.3 and 6)."""
    settings = state.settings
    # The peer of the connection. Behind a reverse proxy this is the proxy: it would need
    # trusted-proxy handling (e.g. uvicorn --forwarded-allow-ips); X-Forwarded-For from
    # anyone else is never trusted.
    client_address = request.client.host if request.client else "unknown"
    refresh_ttl = dt.timedelta(seconds=settings.refresh_token_ttl_seconds)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidTokenRequest("The refresh_token grant needs refresh_token.")
        try:
            tokens = await sessions.refresh(
                state.new_uow(),
                state.cache,
                state.issuer,
                state.limiter,
                refresh_token=refresh_token,
                client_id=client_id,
                client_address=client_address,
                limits=_login_limits(settings),
                refresh_ttl=refresh_ttl,
            )
        except TooManyRequests:
            state.metrics.refused_by_limit("login")
            raise
    else:
        if username is None or password is None:
            raise InvalidTokenRequest("The password grant needs username and password.")
        try:
            tokens = await sessions.log_in(
                state.new_uow(),
                state.cache,
                state.hasher,
                state.issuer,
                state.limiter,
                email=username,
                password=password,
                client_id=client_id or "public",
                client_address=client_address,
                limits=_login_limits(settings),
                refresh_ttl=refresh_ttl,
            )
        except AppError as exc:
            state.metrics.login(_login_outcome(exc))
            if isinstance(exc, TooManyRequests):
                state.metrics.refused_by_limit("login")
            raise
        state.metrics.login("success")
    response.headers["Cache-Control"] = "no-store"
    return AccessToken(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
    )


def _login_outcome(exc: AppError) -> str:
    if isinstance(exc, TooManyRequests):
        return "rate_limited"
    if isinstance(exc, ServiceUnavailable):
        return "unavailable"
    return exc.code


@router.post(
    "/auth/revoke",
    tags=["auth"],
    operation_id="revoke_token",
    response_class=Response,
    responses={200: {"description": "Revoked if it was a refresh token this service issued"}},
)
async def revoke_token(
    state: State,
    token: Annotated[str, Form(min_length=1, max_length=4096)],
    token_type_hint: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """Logout (RFC 7009): ends the session of a refresh token, answering 200 whether or not
    the token was known. Access tokens end with their expiry, or at once with a password
    change or a deactivation."""
    await sessions.revoke(state.new_uow(), token=token)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


def _login_limits(settings: UserSettings) -> login.LoginLimits:
    return login.LoginLimits(
        max_failures_per_account=settings.login_max_failures_per_account,
        window_seconds=settings.login_window_seconds,
        max_attempts_per_address=settings.login_max_attempts_per_address,
        address_window_seconds=settings.login_address_window_seconds,
    )


@router.get(JWKS_PATH, tags=["auth"], operation_id="read_jwks")
async def read_jwks(state: State, response: Response) -> JsonWebKeySet:
    response.headers["Cache-Control"] = f"public, max-age={state.settings.jwks_max_age_seconds}"
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
        session_epoch=standing.session_epoch if standing is not None else 0,
    )
