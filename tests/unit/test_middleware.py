"""The request middleware on a bare ASGI app: what an HTTP server would refuse before us
(a negative or non-numeric Content-Length) is still a clean 413 here."""

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from servicekit.middleware import RequestContextMiddleware


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def client() -> httpx.AsyncClient:
    app = RequestContextMiddleware(echo_length, max_body_bytes=1024)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("declared", ["-1", "abc", "2048"])
async def test_an_unusable_or_oversize_content_length_is_413(declared: str) -> None:
    async with client() as http:
        response = await http.post("/", content=b"{}", headers={"Content-Length": declared})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.headers["x-request-id"]


async def test_a_chunked_body_is_read_bounded_and_replayed() -> None:
    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"x" * 256

    async with client() as http:
        small = await http.post("/", content=chunks(4))
        large = await http.post("/", content=chunks(5))
    assert (small.status_code, small.text) == (200, "1024")
    assert large.status_code == 413


async def test_a_valid_request_id_is_kept_and_an_invalid_one_replaced() -> None:
    async with client() as http:
        kept = await http.get("/", headers={"X-Request-ID": "abc-123"})
        replaced = await http.get("/", headers={"X-Request-ID": "bad id\twith spaces"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32
