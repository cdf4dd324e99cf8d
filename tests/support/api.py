"""The one API client helper of the contract tests: speaks HTTP only, knows no internals."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.deployments import Deployment

PASSWORD = "correct horse battery staple"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Account:
    id: str
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "currency": "EUR",
        "items": [
            {"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"},
            {"sku": "PEN-9", "quantity": 3, "unit_price": "0.99"},
        ],
    }
    body.update(overrides)
    return body


class Api:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.users = deployment.users
        self.orders = deployment.orders

    async def register(
        self, email: str | None = None, password: str = PASSWORD, full_name: str = "Ada Lovelace"
    ) -> httpx.Response:
        return await self.users.post(
            "/users",
            json={"email": email or unique_email(), "password": password, "full_name": full_name},
        )

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.users.post("/auth/token", data={"username": email, "password": password})

    async def account(self, password: str = PASSWORD) -> Account:
        email = unique_email()
        registered = await self.register(email, password)
        assert registered.status_code == 201, registered.text
        logged_in = await self.login(email, password)
        assert logged_in.status_code == 200, logged_in.text
        return Account(
            id=registered.json()["id"],
            email=email,
            password=password,
            token=logged_in.json()["access_token"],
        )

    async def refresh(self, refresh_token: str, **form: str) -> httpx.Response:
        return await self.users.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, **form},
        )

    async def revoke(self, token: str) -> httpx.Response:
        return await self.users.post("/auth/revoke", data={"token": token})

    async def me(self, token: str) -> httpx.Response:
        return await self.users.get("/users/me", headers=_bearer(token))

    async def create_order(
        self,
        token: str,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> httpx.Response:
        headers = _bearer(token)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.orders.post("/orders", json=body or order_body(), headers=headers)

    async def list_orders(self, token: str, **params: Any) -> httpx.Response:
        return await self.orders.get("/orders", params=params, headers=_bearer(token))

    async def get_order(self, token: str, order_id: str) -> httpx.Response:
        return await self.orders.get(f"/orders/{order_id}", headers=_bearer(token))

    async def cancel_order(self, token: str, order_id: str) -> httpx.Response:
        return await self.orders.post(f"/orders/{order_id}/cancel", headers=_bearer(token))

    async def deactivate(self, token: str) -> httpx.Response:
        return await self.users.delete("/users/me", headers=_bearer(token))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Every error has one shape: RFC 9457 problem details with a stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    return body
