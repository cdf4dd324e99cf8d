"""FastAPI pieces both services use: the app skeleton, bearer-token auth, health and readiness."""

import asyncio
import contextlib
import gc
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowPassword
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.cors import ProblemCORSMiddleware, cors_middleware_options
from servicekit.errors import AppError, InvalidToken, StartRefused, Unauthorized
from servicekit.handlers import install_error_handlers
from servicekit.middleware import DEFAULT_MAX_HEADER_BYTES, RequestContextMiddleware
from servicekit.telemetry import Telemetry
from servicekit.tokens import AccessClaims, TokenError, TokenVerifier
from servicekit.tracing import ServerSpans

Check = Callable[[], Awaitable[object]]

# Error responses every route may give, declared once so the OpenAPI document tells the truth.
PROBLEM_SCHEMA: dict[str, Any] = {
    "content": {
        "application/problem+json": {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "detail", "code"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    }
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": "Problem details", **PROBLEM_SCHEMA} for status in statuses}


def create_base_app(
    *,
    title: str,
    version: str,
    lifespan: Any,
    max_body_bytes: int,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    description: str = "",
    token_url: str | None = None,
    cors_origins: Collection[str] = (),
    cors_allow_credentials: bool = False,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """The app skeleton. ``token_url``: where the docs' "Authorize" button logs in, when
    that is another service (the order service runs beside the user service).
    ``cors_origins``: the web origins whose pages may call this app (the user service's
    login, from the order service's docs).

    ``/docs`` (Swagger UI), its OAuth2 redirect page and ``/redoc`` load their scripts and
    styles from the app itself (the pinned ``fastapi-offline`` package ships them), never from
    a CDN: the docs work on a network without internet access.

    ``telemetry``: the HTTP server metrics and ``GET /metrics`` (outside the OpenAPI
    document) when its metrics are on; a server span per request, child of the caller's
    ``traceparent``, when it has a tracer provider (``servicekit.tracing.ServerSpans``, in
    the request-context middleware)."""
    telemetry = telemetry or Telemetry.off()
    app = FastAPIOffline(
        title=title,
        version=version,
        description=description,
        lifespan=_frozen_after_start(lifespan),
        responses=problem_responses(400, 413, 422, 431, 500, 503),
        # A path with a slash too many is 404: a redirect would be built from the Host
        # header, which the client chooses.
        redirect_slashes=False,
        # FastAPI's OpenTelemetry hooks: off. Unconfigured, they would ask the global
        # providers (and the environment) on every request to find out that nobody set
        # them up; on, they build the server span's attributes, and wrap the request's
        # send and receive, for the requests the sampler leaves out too (see "Observability"
        # in docs/benchmarks.md). The server span is ServerSpans', metrics are
        # prometheus_client's (servicekit.metrics).
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
        },
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=max_body_bytes,
        max_header_bytes=max_header_bytes,
        metrics=telemetry.metrics.http,
        spans=ServerSpans(telemetry.tracing) if telemetry.tracing is not None else None,
    )
    app.include_router(telemetry.metrics.router())
    if cors_origins:
        # Added last, so outside the body bound: its 413 carries the headers too.
        app.add_middleware(
            ProblemCORSMiddleware,
            **cors_middleware_options(cors_origins, allow_credentials=cors_allow_credentials),
        )
    if token_url is not None:
        _point_password_flows_at(app, token_url)
    app.add_middleware(StartRefusalMiddleware)
    return app


def include_api(
    app: FastAPI, routers: Iterable[APIRouter], *, tried_first: Collection[APIRouter] = ()
) -> None:
    """Include the API's routers ahead of the routes the app was made with (the docs' and
    ``/metrics``): a request tries the app's routes in order, and every route it tries before
    its own costs it (docs/benchmarks.md, "Routes in the order they are asked for"). None of
    those paths overlaps an API path, and none is in the OpenAPI document.

    ``tried_first``, some of ``routers``, are tried before the others: the routers busiest
    with requests, when they are not the first documented. The OpenAPI document lists its
    paths in the order of ``routers`` all the same. Routers tried in another order must not
    share a path: the first to match a request would answer it."""
    documented = list(routers)
    made_with = len(app.router.routes)
    for router in [*tried_first, *(r for r in documented if r not in tried_first)]:
        app.include_router(router)
    app.router.routes[:] = [*app.router.routes[made_with:], *app.router.routes[:made_with]]
    if tried_first:
        _document_paths_in_order(app, documented)


def _document_paths_in_order(app: FastAPI, routers: list[APIRouter]) -> None:
    order = [
        route.path for router in routers for route in router.routes if isinstance(route, APIRoute)
    ]
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        paths = document["paths"]
        document["paths"] = {path: paths[path] for path in order if path in paths} | paths
        return document

    app.openapi = openapi  # type: ignore[method-assign]


class StartRefusalMiddleware:
    """Tells the server why the start was refused in the one line of a ``StartRefused``,
    instead of the traceback the framework reports a failed start with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_reason(message: Message) -> None:
            # Sent from the handler of the failure, so it is the exception being handled.
            refusal = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(refusal, StartRefused):
                message = {**message, "message": str(refusal)}
            await send(message)

        await self.app(scope, receive, send_reason)


def _frozen_after_start(lifespan: Any) -> Any:
    """Once the app has started, what it built to serve (modules, routes, models, pools) moves
    out of the collector's reach with ``gc.freeze()``: a full collection then walks only what
    requests made, instead of every startup object in the middle of a request. And the
    youngest generation is collected every 20,000 allocations instead of 700: a request
    allocates a few thousand objects, nearly all gone when it ends, so the collector ran
    several times a request to find little. Both are undone when the last app
    of the process stops (tests run several at once)."""

    @contextlib.asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            COLLECTOR.serving_started()
            try:
                yield state
            finally:
                COLLECTOR.serving_stopped()

    return wrapped


class CollectorTuning:
    """The collector settings for serving, applied while at least one app serves."""

    def __init__(self) -> None:
        self._serving = 0
        self._thresholds = gc.get_threshold()

    @property
    def serving(self) -> int:
        """How many apps serve now."""
        return self._serving

    def serving_started(self) -> None:
        if self._serving == 0:
            self._thresholds = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 20, 20)
        self._serving += 1

    def serving_stopped(self) -> None:
        self._serving -= 1
        if self._serving == 0:
            gc.set_threshold(*self._thresholds)
            gc.unfreeze()


COLLECTOR = CollectorTuning()


def _point_password_flows_at(app: FastAPI, token_url: str) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps it as app.openapi_schema: changed once, served after
        for scheme in schema.get("components", {}).get("securitySchemes", {}).values():
            password = scheme.get("flows", {}).get("password")
            if password is not None:
                password["tokenUrl"] = token_url
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class ServiceState(Protocol):
    @property
    def token_verifier(self) -> TokenVerifier: ...


S = TypeVar("S", bound=ServiceState)


@dataclass(frozen=True, slots=True)
class Caller(Generic[S]):
    """Who calls (the token's user) and the service's parts, resolved once per request."""

    state: S
    user_id: uuid.UUID
    # The token's session epoch: the service refuses it if the user's epoch has moved on.
    session_epoch: int = 0


class BearerAuth(SecurityBase, Generic[S]):
    """The bearer token, in one dependency: the route's ``Caller``, or 401.

    In the OpenAPI document it is the OAuth2 password flow that logs in at ``token_url``
    (FastAPI reads ``model`` and ``scheme_name``); on a request it reads the one
    ``Authorization`` header, verifies the token with the service's verifier and returns
    the ``Caller``. One dependency instead of a scheme, a verifier and a caller chained:
    each dependency FastAPI solves has a cost per request (docs/benchmarks.md).
    """

    def __init__(self, *, token_url: str, state_of: Callable[[Request], S]) -> None:
        self.model = OAuth2Model(
            flows=OAuthFlowsModel(password=OAuthFlowPassword(tokenUrl=token_url, scopes={}))
        )
        self.scheme_name = "OAuth2PasswordBearer"
        self._state_of = state_of

    async def __call__(self, request: Request) -> Caller[S]:
        given = [value for key, value in request.scope["headers"] if key == b"authorization"]
        if len(given) > 1:
            # Which one counts would depend on who reads them (a proxy may take the last).
            raise InvalidToken("Send exactly one Authorization header.")
        if not given or not given[0]:
            raise Unauthorized()
        scheme, _, token = given[0].decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            raise InvalidToken("The Authorization header is not a bearer token.")
        state = self._state_of(request)
        try:
            claims = await state.token_verifier.verify(token.strip())
        except TokenError:
            raise InvalidToken() from None
        return Caller(state, user_id_of(claims), claims.session_epoch)


def user_id_of(claims: AccessClaims) -> uuid.UUID:
    """The token's subject as a user id; a subject that is not one is an invalid token."""
    try:
        return uuid.UUID(claims.subject)
    except ValueError:
        raise InvalidToken() from None


def health_router(service: str, checks: Mapping[str, Check], *, limit: float = 1.0) -> APIRouter:
    """``/health`` answers liveness (the original design); ``/ready`` checks each dependency."""
    router = APIRouter(tags=["health"])

    @router.get("/health", operation_id=f"{service}_health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get(
        "/ready",
        operation_id=f"{service}_ready",
        responses={503: {"description": "A dependency is down"}},
    )
    async def ready() -> JSONResponse:
        results = await asyncio.gather(*(_probe(check, limit) for check in checks.values()))
        report = dict(zip(checks, results, strict=True))
        ok = all(value == "ok" for value in report.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "service": service, "checks": report},
            status_code=200 if ok else 503,
            headers=None if ok else {"Retry-After": "1"},
        )

    return router


async def _probe(check: Check, limit: float) -> str:
    try:
        await asyncio.wait_for(check(), limit)
    except TimeoutError:
        return "timeout"
    except (AppError, OSError, Exception) as exc:  # any failure means "not ready"
        return f"error: {type(exc).__name__}"
    return "ok"
