"""The single-process composition root (the original design's ``app/main.py``).

One FastAPI app serves the user API and the order API. The two services are built by their
own composition functions, exactly as in the distributed deployment, but share an in-process
bus and cache instead of Redis, and each keeps its own SQLite file in the data folder.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import TAGGED_CHANNELS
from order_service.core.config import OrderSettings
from order_service.main import build_order_service
from order_service.main import routers as order_routers
from order_service.routers.dependencies import STATE_KEY as ORDER_STATE
from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.database import create_service_engine, database_check
from servicekit.logs import configure_logging
from servicekit.ratelimit import InMemoryRateLimiter
from servicekit.settings import load_settings
from servicekit.tags import TaggedBus, TaggedCache, Tags
from servicekit.telemetry import Telemetry, telemetry_from_environment
from servicekit.tokens import StaticKeySource
from servicekit.tracing import instrument_engine
from servicekit.web import create_base_app, health_router, include_api
from user_service.core.config import UserSettings
from user_service.main import build_user_service
from user_service.main import routers as user_routers
from user_service.routers.dependencies import STATE_KEY as USER_STATE

VERSION = "1.0.0"
# How the single process names itself in logs and traces.
SERVICE_NAME = "app"


class SingleProcessSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    data_dir: Path = Path("data")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def single_process_settings(data_dir: Path | None = None) -> tuple[UserSettings, OrderSettings]:
    """Both services' settings from the environment, pointed at SQLite files in the data
        folder. The internal endpoint gets a random credential: nothing outside may call it; the
    tags on cached entries and replies a random key, as nothing outside shares them."""
    base = load_settings(SingleProcessSettings)
    folder = data_dir or base.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    internal = secrets.token_urlsafe(32)
    signing = secrets.token_urlsafe(32)
    users = load_settings(
        UserSettings,
        database_url=sqlite_url(folder / "user_service.db"),
        data_dir=folder,
        internal_api_token=internal,
        redis_signing_key=signing,
        log_level=base.log_level,
    )
    orders = load_settings(
        OrderSettings,
        database_url=sqlite_url(folder / "order_service.db"),
        data_dir=folder,
        internal_api_token=internal,
        redis_signing_key=signing,
        log_level=base.log_level,
    )
    return users, orders


def create_app(
    user_settings: UserSettings | None = None,
    order_settings: OrderSettings | None = None,
    *,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """``telemetry``: one registry and one tracer provider for both services (as ``app``),
    from the settings and the ``OTEL_*`` variables unless given."""
    if user_settings is None or order_settings is None:
        user_settings, order_settings = single_process_settings()
    telemetry = telemetry or telemetry_from_environment(
        SERVICE_NAME, metrics_enabled=user_settings.metrics_enabled
    )
    configure_logging(SERVICE_NAME, user_settings.log_level, traces=bool(telemetry.tracing))
    user_engine = create_service_engine(user_settings)
    order_engine = create_service_engine(order_settings)
    for engine, settings in ((user_engine, user_settings), (order_engine, order_settings)):
        telemetry.metrics.watch_engine(engine, settings.service_name)
        instrument_engine(engine, telemetry.tracing)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # The same tagged cache and bus as the distributed deployment's, over in-process ones.
        tags = Tags(user_settings.redis_signing_keys() or [secrets.token_bytes(32)])
        bus = TaggedBus(InMemoryBus(), tags, TAGGED_CHANNELS)
        cache = TaggedCache(InMemoryCache(), tags)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(telemetry.close)
            stack.push_async_callback(user_engine.dispose)
            stack.push_async_callback(order_engine.dispose)
            users = await stack.enter_async_context(
                build_user_service(
                    user_settings,
                    cache=cache,
                    bus=bus,
                    limiter=InMemoryRateLimiter(),
                    engine=user_engine,
                    telemetry=telemetry,
                )
            )
            keys = StaticKeySource({key.kid: key.public_key for key in users.signing_keys})
            orders = await stack.enter_async_context(
                build_order_service(
                    order_settings,
                    cache=cache,
                    bus=bus,
                    keys=keys,
                    engine=order_engine,
                    telemetry=telemetry,
                )
            )
            await bus.start()
            stack.push_async_callback(bus.close)
            yield {USER_STATE: users, ORDER_STATE: orders}

    app = create_base_app(
        title="Users and orders",
        version=VERSION,
        lifespan=lifespan,
        max_body_bytes=user_settings.max_body_bytes,
        description="The user API and the order API in one process.",
        # It serves the user API, so it answers browsers as the user service does.
        cors_origins=user_settings.cors_allow_origins,
        cors_allow_credentials=user_settings.cors_allow_credentials,
        telemetry=telemetry,
    )
    health = health_router(
        "app",
        {
            "user_database": database_check(user_engine),
            "order_database": database_check(order_engine),
        },
    )
    # The order routes are tried first: otherwise a request for an order tries every user
    # route before its own (docs/benchmarks.md, "Orders tried first in one process").
    include_api(app, [*user_routers(), *order_routers(), health], tried_first=order_routers())
    return app


@functools.cache
def _app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    # `uvicorn app.main:app` builds the app on first access, not at import.
    if name == "app":
        return _app()
    raise AttributeError(name)
