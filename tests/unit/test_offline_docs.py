"""The interactive docs of every app load nothing from outside: Swagger UI, its OAuth2
redirect page and ReDoc take their scripts and styles from the app itself (a network without
internet access shows them too). Whether they render is the browser test's job."""

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app as create_single_process_app
from order_service.core.config import OrderSettings
from order_service.main import create_app as create_order_app
from tests.support.deployments import single_process_settings
from user_service.core.config import UserSettings
from user_service.main import create_app as create_user_app

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def single_process(folder: Path) -> FastAPI:
    return create_single_process_app(*single_process_settings(folder))


def user_service(folder: Path) -> FastAPI:
    url = f"sqlite+aiosqlite:///{folder / 'users.db'}"
    return create_user_app(UserSettings(database_url=url, internal_api_token="t" * 24))


def order_service(folder: Path) -> FastAPI:
    url = f"sqlite+aiosqlite:///{folder / 'orders.db'}"
    return create_order_app(OrderSettings(database_url=url, internal_api_token="t" * 24))


APPS: dict[str, Callable[[Path], FastAPI]] = {
    "single": single_process,
    "user_service": user_service,
    "order_service": order_service,
}


@pytest.fixture(params=sorted(APPS))
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> httpx.AsyncClient:
    # The docs need no lifespan: nothing here connects to a database or Redis.
    app = APPS[request.param](tmp_path)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docs")


def referenced(page: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', page) + re.findall(
        r"url: '([^']+)'", page
    )


async def assert_served_by_the_app(client: httpx.AsyncClient, page: str) -> list[str]:
    assert "cdn" not in page.lower()
    assert not re.search(r"https?://", page), "the page names another host"
    paths = referenced(page)
    assert paths
    for path in paths:
        assert path.startswith("/"), path
        response = await client.get(path)
        assert response.status_code == 200, path
        wanted = CONTENT_TYPES.get(Path(path).suffix, "json")
        assert wanted in response.headers["content-type"], (path, response.headers)
        assert len(response.content) > 1000, path
    return paths


async def test_swagger_ui_takes_its_script_and_style_from_the_app(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    paths = await assert_served_by_the_app(client, page.text)
    assert any(path.endswith("swagger-ui-bundle.js") for path in paths)
    assert any(path.endswith("swagger-ui.css") for path in paths)
    assert "/openapi.json" in paths


async def test_redoc_takes_its_script_from_the_app(client: httpx.AsyncClient) -> None:
    page = await client.get("/redoc")
    assert page.status_code == 200
    paths = await assert_served_by_the_app(client, page.text)
    assert any(path.endswith("redoc.standalone.js") for path in paths)
    assert "fonts.googleapis" not in page.text


async def test_the_oauth2_redirect_page_is_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert "oauth2" in page.text
    assert not re.search(r"<script[^>]+src=", page.text)
    docs = (await client.get("/docs")).text
    assert "'/docs/oauth2-redirect'" in docs


async def test_the_docs_pages_are_not_api_operations(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if "docs" in path or "redoc" in path]
