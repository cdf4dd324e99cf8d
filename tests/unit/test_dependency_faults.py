"""A fault of a backing service: the log names the part and its address, the client gets
the one generic 503 and never an address or a credential."""

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from servicekit.database import database_unavailable
from servicekit.web import create_base_app


def test_a_database_fault_names_the_server_and_not_the_password() -> None:
    url = make_url("postgresql+asyncpg://orders:pa55word@db.internal:6543/orders")
    error = database_unavailable(url, ConnectionResetError("connection lost"))
    assert "postgresql at db.internal:6543" in error.message
    assert "connection lost" in error.message
    assert "pa55word" not in error.message
    assert error.status_code == 503
    assert error.headers["Retry-After"] == "1"


async def test_the_client_sees_a_generic_503_and_the_log_the_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_base_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1024)
    url = make_url("postgresql+asyncpg://u:secret@10.1.2.3:5432/x")

    @app.get("/fails")
    async def fails() -> None:
        raise database_unavailable(url, TimeoutError("no answer"))

    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.WARNING, logger="servicekit.handlers"):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/fails")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert "10.1.2.3" not in response.text
    assert response.headers["Retry-After"] == "1"
    logged = [r.getMessage() for r in caplog.records if r.name == "servicekit.handlers"]
    assert any("postgresql at 10.1.2.3:5432" in line for line in logged), logged
    assert not any("secret" in line for line in logged)
