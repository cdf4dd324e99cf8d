"""The interactive docs, used in a real browser as a person would, on both deployments.

Headless Chromium opens ``/docs``, logs in with "Authorize" (the OAuth2 password flow) and
runs an operation with "Try it out"; on the distributed deployment the login goes to the
user service, another origin, which the browser allows only because the user service
answers CORS for the order service's origin. Each final page is saved as a screenshot in
``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from devstack import ServerProcess, aio, free_port
from tests.support.api import PASSWORD, order_body, unique_email
from tests.support.browser import (
    WAIT,
    SwaggerUi,
    chromium,
    require_browser,
    screenshot,
    single_process_server,
)
from tests.support.distributed import DistributedStack, distributed_stack


def register(base_url: str, email: str) -> None:
    response = httpx.post(
        f"{base_url}/users",
        json={"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"},
        timeout=10.0,
    )
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The single process as ``make run`` starts it (uvicorn ``app.main:app``)."""
    require_browser()
    with single_process_server(tmp_path_factory.mktemp("browser-single")) as server:
        yield server


def test_single_process_docs_log_in_and_read_me(single: ServerProcess) -> None:
    email = unique_email("browser")
    register(single.url, email)
    with chromium() as driver:
        docs = SwaggerUi(driver, f"{single.url}/docs")
        docs.open()
        docs.authorize(email, PASSWORD)
        status, response = docs.execute("users", "read_me")
        screenshot(
            driver, "single-process-docs-read-me", showing=docs.operation("users", "read_me")
        )
    assert status == "200", response
    assert email in response


def redoc_text(driver: Chrome, url: str, name: str) -> str:
    """ReDoc rendered (not a blank page): the text it shows once the API is laid out."""
    driver.get(url)
    WebDriverWait(driver, WAIT).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, ".api-content h1")
            and d.find_elements(By.CSS_SELECTOR, "[data-section-id]")
        )
    )
    screenshot(driver, name)
    text: str = driver.execute_script("return document.body.innerText")
    return text


def test_single_process_redoc_renders(single: ServerProcess) -> None:
    with chromium() as driver:
        text = redoc_text(driver, f"{single.url}/redoc", "single-process-redoc")
    assert "Users and orders" in text
    assert "/users/me" in text
    assert "/orders" in text


@dataclass
class DocsDeployment:
    """The distributed deployment, its order service's docs logging in at the user service."""

    stack: DistributedStack
    order_service: aio.ServerProcess
    order_origin: str


@pytest.fixture(scope="module")
async def distributed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DocsDeployment]:
    require_browser()
    # The order service's port is chosen first: the user service must know its origin.
    order_port = free_port()
    order_origin = f"http://127.0.0.1:{order_port}"
    async with distributed_stack(
        tmp_path_factory.mktemp("browser-distributed"),
        internal_token="internal-" + secrets.token_urlsafe(24),
        order_services=0,
        extra_env={"CORS_ALLOW_ORIGINS": order_origin},
    ) as stack:
        order_service = stack.new_order_service(
            port=order_port, PUBLIC_TOKEN_URL=f"{stack.user_service.url}/auth/token"
        )
        await order_service.start()
        await stack.wait_for_subscribers()
        yield DocsDeployment(stack, order_service, order_origin)


async def test_order_service_docs_log_in_at_the_user_service_and_create_an_order(
    distributed: DocsDeployment,
) -> None:
    email = unique_email("browser")
    await asyncio.to_thread(register, distributed.stack.user_service.url, email)

    def use_the_docs() -> tuple[str, str]:
        with chromium() as driver:
            docs = SwaggerUi(driver, f"{distributed.order_origin}/docs")
            docs.open()
            docs.authorize(email, PASSWORD)
            body = order_body(items=[{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}])
            result = docs.execute("orders", "create_order", body=body)
            block = docs.operation("orders", "create_order")
            screenshot(driver, "order-service-docs-create-order", showing=block)
            return result

    status, response = await asyncio.to_thread(use_the_docs)
    assert status == "201", response
    assert '"status": "pending"' in response
    assert '"total": "25.00"' in response


async def test_a_page_of_an_origin_not_allowed_cannot_log_in(
    distributed: DocsDeployment,
) -> None:
    """The same docs reached as ``localhost`` are another origin, not in
    ``CORS_ALLOW_ORIGINS``: the browser refuses the login's answer to the page."""
    email = unique_email("browser")
    await asyncio.to_thread(register, distributed.stack.user_service.url, email)
    other_origin = f"http://localhost:{distributed.order_service.port}"

    def log_in() -> str | None:
        with chromium() as driver:
            docs = SwaggerUi(driver, f"{other_origin}/docs")
            docs.open()
            error = docs.try_authorize(email, PASSWORD)
            screenshot(driver, "order-service-docs-origin-not-allowed")
            return error

    error = await asyncio.to_thread(log_in)
    assert error is not None
    assert "Failed to fetch" in error


async def test_order_service_redoc_renders(distributed: DocsDeployment) -> None:
    def read() -> str:
        with chromium() as driver:
            return redoc_text(driver, f"{distributed.order_origin}/redoc", "order-service-redoc")

    text = await asyncio.to_thread(read)
    assert "Order Service" in text
    assert "/orders" in text
