"""Each service's own app (its own OpenAPI document), built in this process with in-memory
adapters: what the distributed deployment serves on 8001 and 8002, minus Redis and Postgres.

The order service's app also builds a user service behind its in-memory bus (not exposed),
so that user verification is answered; both apps share one data folder, hence one user
database and one signing key, and a token from the user app works on the order app.
"""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from order_service.main import build_order_service
from order_service.main import routers as order_routers
from order_service.routers.dependencies import STATE_KEY as ORDER_STATE
from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.ratelimit import InMemoryRateLimiter
from servicekit.tokens import StaticKeySource
from servicekit.web import create_base_app, health_router
from tests.support.deployments import single_process_settings
from user_service.main import Adapters, build_user_service
from user_service.main import create_app as create_user_app


def user_service_app(data_dir: Path, **overrides: Any) -> FastAPI:
    settings, _ = single_process_settings(data_dir, **overrides)
    return create_user_app(settings, adapters=Adapters.in_process())


def order_service_app(data_dir: Path, **overrides: Any) -> FastAPI:
    user_settings, settings = single_process_settings(data_dir, **overrides)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        bus, cache = InMemoryBus(), InMemoryCache()
        async with contextlib.AsyncExitStack() as stack:
            users = await stack.enter_async_context(
                build_user_service(
                    user_settings, cache=cache, bus=bus, limiter=InMemoryRateLimiter()
                )
            )
            keys = StaticKeySource({key.kid: key.public_key for key in users.signing_keys})
            orders = await stack.enter_async_context(
                build_order_service(settings, cache=cache, bus=bus, keys=keys)
            )
            await bus.start()
            stack.push_async_callback(bus.close)
            yield {ORDER_STATE: orders}

    app = create_base_app(
        title="Order Service", version="test", lifespan=lifespan, max_body_bytes=65536
    )
    for router in order_routers():
        app.include_router(router)
    app.include_router(health_router("order_service", {}))
    return app
