"""Parameters read by hand (``servicekit.params``) are what FastAPI makes of the same
declarations: the same value, the same validation errors, the same OpenAPI parameter. The
declarations are the order routes' own, and one required query parameter."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Cookie, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from order_service.routers.order_router import CURSOR, IDEMPOTENCY_KEY, LIMIT, ORDER_ID
from servicekit.params import RequestParam


def _apps(param: RequestParam[Any], name: str, declared: Any) -> tuple[FastAPI, FastAPI]:
    """One app that declares the parameter to FastAPI, one that reads it by hand."""
    by_fastapi, by_hand = FastAPI(), FastAPI()
    path = f"/p/{{{name}}}" if param.location == "path" else "/p"

    async def with_declared(**values: Any) -> dict[str, Any]:
        return {"value": values[name]}

    with_declared.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=param.default, annotation=declared
            )
        ]
    )
    by_fastapi.get(path)(with_declared)

    @by_hand.get(path, openapi_extra={"parameters": [param.openapi]})
    async def with_request(request: Request) -> dict[str, Any]:
        return {"value": param.read(request)}

    for app in (by_fastapi, by_hand):

        @app.exception_handler(RequestValidationError)
        async def errors(_: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, RequestValidationError)
            return JSONResponse({"errors": exc.errors()}, status_code=422)

    return by_fastapi, by_hand


PARAMS: dict[str, RequestParam[Any]] = {
    "idempotency_key": IDEMPOTENCY_KEY,
    "limit": LIMIT,
    "cursor": CURSOR,
    "order_id": ORDER_ID,
    # No route has a required query parameter: one for FastAPI's "missing".
    "page": RequestParam[int]("page", Annotated[int, Query(ge=1)]),
}
CASES = [
    # (parameter, what the request carries, expected status)
    ("idempotency_key", [], 200),
    ("idempotency_key", [(b"idempotency-key", b"k-1")], 200),
    ("idempotency_key", [(b"Idempotency-Key", b"~!" * 127 + b"x")], 200),
    ("idempotency_key", [(b"idempotency-key", b"k" * 256)], 422),
    ("idempotency_key", [(b"idempotency-key", b"")], 422),
    ("idempotency_key", [(b"idempotency-key", b"two words")], 422),
    ("idempotency_key", [(b"idempotency-key", b"tab\there")], 422),
    ("idempotency_key", [(b"idempotency-key", "caf\u00e9".encode())], 422),
    ("limit", "", 200),
    ("limit", "limit=1", 200),
    ("limit", "limit=100", 200),
    ("limit", "limit=+07", 200),
    ("limit", "limit=5&limit=7", 200),
    ("limit", "limit=0", 422),
    ("limit", "limit=101", 422),
    ("limit", "limit=", 422),
    ("limit", "limit=2.0", 200),
    ("limit", "limit=2.5", 422),
    ("limit", "limit=ten", 422),
    ("limit", "limit=" + "9" * 5000, 422),
    ("cursor", "", 200),
    ("cursor", "cursor=abc", 200),
    ("cursor", "cursor=" + "c" * 200, 200),
    ("cursor", "cursor=" + "c" * 201, 422),
    ("cursor", "cursor=", 422),
    ("order_id", "/3f2504e0-4f89-11d3-9a0c-0305e82c3301", 200),
    ("order_id", "/3F2504E04F8911D39A0C0305E82C3301", 200),
    ("order_id", "/3f2504e0-4f89-11d3-9a0c", 422),
    ("order_id", "/not-an-id", 422),
    ("page", "page=2", 200),
    ("page", "", 422),
    ("page", "page=0", 422),
]


@pytest.mark.parametrize("name", list(PARAMS))
def test_the_documented_parameter_is_the_one_fastapi_documents(name: str) -> None:
    by_fastapi, by_hand = _apps(PARAMS[name], name, PARAMS[name].declared)
    [(path, operations)] = by_fastapi.openapi()["paths"].items()
    [expected] = operations["get"]["parameters"]
    assert by_hand.openapi()["paths"][path]["get"]["parameters"] == [expected]


@pytest.mark.parametrize(("name", "sent", "status"), CASES)
async def test_values_and_errors_are_those_of_fastapi(name: str, sent: Any, status: int) -> None:
    headers, query = (sent, "") if isinstance(sent, list) else ([], sent)
    url = f"/p{query}" if PARAMS[name].location == "path" else f"/p?{query}"
    answers = []
    for app in _apps(PARAMS[name], name, PARAMS[name].declared):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(url, headers=headers)
        answers.append((response.status_code, response.json()))
    by_fastapi, by_hand = answers
    assert by_hand == by_fastapi
    assert by_fastapi[0] == status


def test_only_query_and_header_parameters_are_read_by_hand() -> None:
    with pytest.raises(TypeError, match="only path, query and header"):
        RequestParam("session", Annotated[str | None, Cookie()], None)
    with pytest.raises(TypeError, match="only path, query and header"):
        RequestParam("limit", int, 20)
