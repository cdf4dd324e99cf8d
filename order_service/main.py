"""The Order Service's composition root: builds its parts, and its app for port 8002.

``build_order_service`` takes its adapters as arguments: the single process passes
in-process ones (and the user service's own keys), the distributed deployment Redis ones
(and a JWKS client). Nothing connects at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import JWKS_PATH
from order_service.core.config import OrderSettings
from order_service.core.database import MIGRATIONS, VERSION_TABLE, OrderUnitOfWork
from order_service.core.state import OrderServiceState
from order_service.core.user_verification import CachedBusUserVerifier, HttpUserVerifier
from order_service.repositories.idempotency_repository import KeyLocks
from order_service.repositories.order_writer import OrderWriter
from order_service.routers import order_router
from order_service.routers.dependencies import STATE_KEY
from order_service.services import order_service
from servicekit.bus import MessageBus
from servicekit.cache import Cache
from servicekit.database import create_service_engine, create_session_factory, database_check
from servicekit.jwks import JwksKeySource
from servicekit.logs import configure_logging
from servicekit.migrations import migrate
from servicekit.redis import RedisCache, create_redis
from servicekit.redis_bus import RedisBus
from servicekit.settings import load_settings
from servicekit.tokens import KeySource, TokenVerifier
from servicekit.web import create_base_app, health_router

VERSION = "1.0.0"
PURGE_INTERVAL_SECONDS = 600.0
log = logging.getLogger(__name__)


def routers() -> list[APIRouter]:
    return [order_router.router]


@contextlib.asynccontextmanager
async def build_order_service(
    settings: OrderSettings,
    *,
    cache: Cache,
    bus: MessageBus,
    keys: KeySource,
    user_service: httpx.AsyncClient | None = None,
    engine: AsyncEngine | None = None,
) -> AsyncIterator[OrderServiceState]:
    """Everything the service needs, disposed in reverse order. Subscribes to verification
    replies; the owner of the bus starts it. Without ``user_service`` there is no HTTP
    fallback (the single process, where the bus always has a listener)."""
    async with contextlib.AsyncExitStack() as stack:
        if engine is None:
            engine = create_service_engine(settings)
            stack.push_async_callback(engine.dispose)
        if settings.migrate_on_start:
            await migrate(engine, MIGRATIONS, VERSION_TABLE)
        sessions = create_session_factory(engine)
        lookups = create_session_factory(engine, read_only=True)
        locks = KeyLocks()
        fallback = (
            HttpUserVerifier(user_service, token=settings.internal_api_token.get_secret_value())
            if user_service is not None
            else None
        )

        def new_uow(*, read_only: bool = False) -> OrderUnitOfWork:
            return OrderUnitOfWork(lookups if read_only else sessions, locks)

        writer = OrderWriter(engine)
        stack.push_async_callback(writer.close)
        housekeeping = asyncio.create_task(_purge_keys_periodically(new_uow), name="purge-keys")
        stack.push_async_callback(_cancel, housekeeping)
        yield OrderServiceState(
            settings=settings,
            new_uow=new_uow,
            writer=writer,
            users=CachedBusUserVerifier(
                cache, bus, timeout=settings.user_verification_timeout, fallback=fallback
            ),
            token_verifier=TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            ),
        )


async def _purge_keys_periodically(
    new_uow: Callable[[], OrderUnitOfWork], interval: float = PURGE_INTERVAL_SECONDS
) -> None:
    while True:
        try:
            purged = await order_service.purge_expired_idempotency_keys(new_uow())
            if purged:
                log.info("purged %d expired idempotency keys", purged)
        except Exception as exc:  # a database outage must not end the loop
            log.warning("idempotency key purge failed: %r", exc)
        await asyncio.sleep(interval)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    """The distributed Order Service: Postgres, Redis and the user service from the environment."""
    settings = settings or load_settings(OrderSettings)
    configure_logging(settings.service_name, settings.log_level)
    engine = create_service_engine(settings)
    redis = create_redis(
        settings.redis_host,
        settings.redis_port,
        name=settings.service_name,
        connect_timeout=settings.redis_connect_timeout,
        timeout=settings.redis_timeout,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        bus = RedisBus(redis)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            stack.push_async_callback(redis.aclose)
            user_service = httpx.AsyncClient(
                base_url=str(settings.user_service_url).rstrip("/"),
                timeout=settings.user_service_timeout,
                headers={"User-Agent": settings.service_name},
            )
            stack.push_async_callback(user_service.aclose)
            keys = JwksKeySource(user_service, JWKS_PATH, cooldown=settings.jwks_cooldown_seconds)
            keys.start()  # refetches on the JWKS's max-age, so withdrawn keys go
            stack.push_async_callback(keys.close)
            state = await stack.enter_async_context(
                build_order_service(
                    settings,
                    cache=RedisCache(redis),
                    bus=bus,
                    keys=keys,
                    user_service=user_service,
                    engine=engine,
                )
            )
            await bus.start()
            stack.push_async_callback(bus.close)
            yield {STATE_KEY: state}

    app = create_base_app(
        title="Order Service",
        version=VERSION,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        description="Orders of verified users.",
        token_url=settings.public_token_url,
    )
    for router in routers():
        app.include_router(router)
    app.include_router(
        health_router("order_service", {"database": database_check(engine), "redis": redis.ping})
    )
    return app


@functools.cache
def _app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    # `uvicorn order_service.main:app` builds the app on first access, not at import.
    if name == "app":
        return _app()
    raise AttributeError(name)
