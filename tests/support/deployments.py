"""The deployments the contract tests run against, each as an async context manager that
yields a ``Deployment``: one httpx client for the user API, one for the order API.

``single``: the single-process app, in this process over ASGI, on a fresh data folder.
``distributed``: the user service and the order service as real processes, started with their
images' commands, on a private redis-server and fresh Postgres databases
(``tests/support/distributed.py``); ``extra["stack"]`` is the ``DistributedStack``.
"""

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.main import create_app, sqlite_url
from order_service.core.config import OrderSettings
from tests.support.distributed import distributed_stack
from user_service.core.auth import DEV_KEY_FILE
from user_service.core.config import UserSettings

INTERNAL_TOKEN = "internal-" + secrets.token_urlsafe(24)


@dataclass
class Deployment:
    name: str
    users: httpx.AsyncClient
    orders: httpx.AsyncClient
    internal_token: str
    # Known keys: "signing_key_pem" (bytes), the user service's private key, for tests that
    # must forge tokens with a valid signature to prove that a claim alone is checked.
    extra: dict[str, Any] = field(default_factory=dict)


def with_lifespan_state(app: FastAPI, state: dict[str, Any]) -> Callable[..., Any]:
    """What a server does after the lifespan: hand each request a copy of its state."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = dict(state)
        await app(scope, receive, send)

    return asgi


def single_process_settings(data_dir: Path, **overrides: Any) -> tuple[UserSettings, OrderSettings]:
    common = {"data_dir": data_dir, "internal_api_token": INTERNAL_TOKEN, **overrides}
    return (
        UserSettings(database_url=sqlite_url(data_dir / "user_service.db"), **common),
        OrderSettings(database_url=sqlite_url(data_dir / "order_service.db"), **common),
    )


@contextlib.asynccontextmanager
async def single(tmp: Path, **overrides: Any) -> AsyncIterator[Deployment]:
    app = create_app(*single_process_settings(tmp, **overrides))
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=with_lifespan_state(app, dict(state or {})))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            key = (tmp / DEV_KEY_FILE).read_bytes()
            yield Deployment(
                "single", client, client, INTERNAL_TOKEN, {"app": app, "signing_key_pem": key}
            )


@contextlib.asynccontextmanager
async def distributed(tmp: Path, **overrides: Any) -> AsyncIterator[Deployment]:
    """Settings overrides become the services' environment variables."""
    env = {name.upper(): str(value) for name, value in overrides.items()}
    async with (
        distributed_stack(tmp, internal_token=INTERNAL_TOKEN, extra_env=env) as stack,
        httpx.AsyncClient(base_url=stack.user_service.url, timeout=10.0) as users,
        httpx.AsyncClient(base_url=stack.order_service.url, timeout=10.0) as orders,
    ):
        key = (stack.folder / "data" / DEV_KEY_FILE).read_bytes()
        yield Deployment(
            "distributed",
            users,
            orders,
            INTERNAL_TOKEN,
            {"stack": stack, "signing_key_pem": key},
        )


# Each factory takes a folder and settings overrides (field names of the services' settings).
DEPLOYMENTS: dict[str, Callable[..., contextlib.AbstractAsyncContextManager[Deployment]]] = {
    "single": single,
    "distributed": distributed,
}
