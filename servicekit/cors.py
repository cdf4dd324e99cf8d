"""Cross-origin requests from browsers: which web origins may call a service from their pages.

The order service's interactive docs log in at the user service, another origin; without CORS
headers on the user service the browser refuses to hand the answer to the page. The allowed
origins come from settings (``CORS_ALLOW_ORIGINS``), never ``*`` together with credentials.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from servicekit.handlers import problem

ANY_ORIGIN = "*"

# Methods and request headers the services' APIs use from a page; the CORS-safelisted ones
# (Accept, Content-Type, ...) are always allowed. Swagger UI adds X-Requested-With to logins.
ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Idempotency-Key", "X-Request-ID", "X-Requested-With")
# Response headers a page may read besides the safelisted ones.
EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate", "X-Request-ID", "Idempotent-Replayed")
PREFLIGHT_MAX_AGE = 600


def _split_origins(value: Any) -> Any:
    """``a,b`` from the environment (or a sequence from code) as a tuple of origins."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def is_origin(text: str) -> bool:
    """What a browser sends as ``Origin``: scheme, host, optional port; no path, no slash."""
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and port_ok
        and "@" not in parts.netloc
        and not (parts.path or parts.query or parts.fragment or text.endswith(("?", "#")))
    )


def _checked_origins(value: tuple[str, ...]) -> tuple[str, ...]:
    for origin in value:
        if origin != ANY_ORIGIN and not is_origin(origin):
            raise ValueError(
                f"{origin!r} is not an origin: scheme://host[:port], without a path or a "
                "trailing slash (e.g. http://127.0.0.1:8002)"
            )
    return value


# A settings field: comma-separated in the environment, each entry checked at start.
CorsOrigins = Annotated[
    tuple[str, ...],
    NoDecode,
    BeforeValidator(_split_origins),
    AfterValidator(_checked_origins),
]


def check_cors_policy(origins: Collection[str], *, allow_credentials: bool) -> None:
    """Any origin with credentials would let every web page act as the signed-in user."""
    if allow_credentials and ANY_ORIGIN in origins:
        raise ValueError(
            "CORS_ALLOW_ORIGINS cannot be '*' while CORS_ALLOW_CREDENTIALS is true: "
            "list the origins"
        )


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware; a refused preflight answers in the services' problem
    shape instead of plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        body = bytes(response.body).decode()
        refused = body.removeprefix("Disallowed CORS ")
        headers = {
            key: value
            for key, value in response.headers.items()
            if key.lower().startswith("access-control-") or key.lower() == "vary"
        }
        return problem(
            400,
            "cors_not_allowed",
            f"This cross-origin request is not allowed (refused: {refused}).",
            headers=headers,
        )


def cors_middleware_options(
    origins: Collection[str], *, allow_credentials: bool = False
) -> dict[str, Any]:
    """The keyword arguments of ``ProblemCORSMiddleware`` for these origins."""
    check_cors_policy(origins, allow_credentials=allow_credentials)
    return {
        "allow_origins": tuple(origins),
        "allow_methods": ALLOWED_METHODS,
        "allow_headers": ALLOWED_HEADERS,
        "expose_headers": EXPOSED_HEADERS,
        "allow_credentials": allow_credentials,
        "max_age": PREFLIGHT_MAX_AGE,
    }
