"""Render every error as one JSON shape: RFC 9457 problem details plus a stable ``code``:
``{"type": "about:blank", "title": ..., "status": ..., "detail": ..., "code": ...}``.
No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from servicekit.errors import AppError, DependencyUnavailable, ServiceUnavailable
from servicekit.faults import DEPENDENCY_FAULTS, is_dependency_fault

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, DependencyUnavailable):
        # Its message names the part and its address: for the log, not for the client.
        log.warning("dependency fault on %s %s: %s", request.method, request.url.path, exc)
        return problem(exc.status_code, exc.code, ServiceUnavailable.detail, headers=exc.headers)
    return problem(exc.status_code, exc.code, exc.message, headers=exc.headers, **exc.extensions())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is left out on purpose: it may be a password.
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem(422, "validation_error", "The request is not valid.", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405:
        # The router answers from the first route of the path; the path may have several.
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem(exc.status_code, code, detail, headers=headers)


METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path (each method asked of the app's
    routes, included routers too), HEAD wherever GET is."""
    methods = {
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    if is_dependency_fault(exc):
        log.warning("dependency fault on %s %s: %r", request.method, request.url.path, exc)
        return problem(
            503, "service_unavailable", ServiceUnavailable.detail, headers={"Retry-After": "1"}
        )
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", AppError.detail)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Registered per class so that the exception middleware answers them without re-raising.
    for fault in (*DEPENDENCY_FAULTS, sqlalchemy.exc.DBAPIError):
        app.add_exception_handler(fault, _dependency_error)
    app.add_exception_handler(Exception, _unexpected_error)
