"""Errors that carry their HTTP status. Free of any web framework and of any driver:
services raise and catch them, adapters translate driver faults into them
(``servicekit.faults``), ``servicekit.handlers`` renders them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class AppError(Exception):
    """Base of every error a client may see. Subclasses set the status and a stable code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    detail: ClassVar[str] = "Internal server error."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.message = detail or self.detail
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def extensions(self) -> dict[str, str]:
        """Members added to the problem body beside ``code`` (RFC 9457 extensions)."""
        return {}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"
    detail = "The request is not valid."


class OAuthError(BadRequest):
    """An OAuth 2.0 token-endpoint error (RFC 6749 section 5.2): ``error`` and
    ``error_description`` in the problem body, ``error`` equal to ``code``."""

    def extensions(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.message}


class Unauthorized(AppError):
    status_code = 401
    code = "not_authenticated"
    detail = "Authentication is required."

    def __init__(self, detail: str | None = None, *, error: str | None = None):
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class InvalidToken(Unauthorized):
    code = "invalid_token"
    detail = "The access token is invalid or expired."

    def __init__(self, detail: str | None = None):
        super().__init__(detail, error="invalid_token")


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    detail = "This action is not allowed."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    detail = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    detail = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    detail = "The request body is too large."


class RequestHeadersTooLarge(AppError):
    status_code = 431
    code = "request_header_fields_too_large"
    detail = "The request headers are too large."


class DuplicateHeader(AppError):
    status_code = 400
    code = "duplicate_header"
    detail = "A header that must appear once was sent more than once."


class UnprocessableContent(AppError):
    status_code = 422
    code = "unprocessable_content"
    detail = "The request cannot be processed."


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"
    detail = "Too many requests; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    detail = "A dependency is unavailable; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class DependencyUnavailable(ServiceUnavailable):
    """A backing service (Redis, Postgres, another service) did not answer; the adapter that
    met the fault raises this, naming the part and its address but no credential."""


class StartRefused(Exception):
    """The service must not start: a configuration only its operator can fix (a credential a
    backing service refuses, a certificate that does not verify). Its message is the one line
    the start reports, naming the part and its address but no credential."""
