"""The Idempotency-Key, read by hand, is what FastAPI would make of the same header parameter:
the same value, the same validation errors, the same OpenAPI parameter."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from order_service.routers.order_router import IDEMPOTENCY_KEY_PARAMETER, idempotency_key

# The declaration the route had before it read the header by hand.
Declared = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe creation: the same key and body replay the first answer",
    ),
]


def _apps() -> tuple[FastAPI, FastAPI]:
    declared, by_hand = FastAPI(), FastAPI()

    @declared.post("/orders")
    async def with_header(key: Declared = None) -> dict[str, Any]:
        return {"key": key}

    @by_hand.post("/orders", openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]})
    async def with_request(request: Request) -> dict[str, Any]:
        return {"key": idempotency_key(request)}

    for app in (declared, by_hand):

        @app.exception_handler(RequestValidationError)
        async def errors(_: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, RequestValidationError)
            return JSONResponse({"errors": exc.errors()}, status_code=422)

    return declared, by_hand


def test_the_documented_parameter_is_the_one_fastapi_documents() -> None:
    declared, by_hand = _apps()
    [expected] = declared.openapi()["paths"]["/orders"]["post"]["parameters"]
    assert by_hand.openapi()["paths"]["/orders"]["post"]["parameters"] == [expected]


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (None, 200),
        (b"k-1", 200),
        (b"~!" * 127 + b"x", 200),
        (b"k" * 256, 422),
        (b"", 422),
        (b"two words", 422),
        (b"tab\there", 422),
        ("caf\u00e9".encode(), 422),
    ],
)
async def test_values_and_errors_are_those_of_fastapi(value: bytes | None, status: int) -> None:
    headers = [] if value is None else [(b"idempotency-key", value)]
    answers = []
    for app in _apps():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/orders", headers=headers)
        answers.append((response.status_code, response.json()))
    declared, by_hand = answers
    assert by_hand == declared
    assert declared[0] == status
