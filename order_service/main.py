"""The Order Service's composition root: builds its parts, and its app for port 8002.

``build_order_service`` takes its adapters as arguments; ``create_app`` is the one assembly of
the service's own app, with Redis adapters (the distributed deployment) unless others are
given (the tests). The single process (``app.main``) serves this service's routers beside the
user service's. Nothing connects at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import JWKS_PATH, TAGGED_CHANNELS
from order_service.adapters.order_writer import SqlOrderWriter
from order_service.adapters.sql_unit_of_work import SqlOrderUnitOfWork
from order_service.adapters.user_verifier import CachedBusUserVerifier, HttpUserVerifier
from order_service.core.config import OrderSettings
from order_service.core.database import MIGRATIONS, VERSION_TABLE
from order_service.routers import order_router
from order_service.routers.dependencies import STATE_KEY, OrderServiceState
from order_service.services import order_service
from servicekit.bus import MessageBus
from servicekit.cache import Cache
from servicekit.database import create_service_engine, create_session_factory, database_check
from servicekit.errors import StartRefused
from servicekit.jwks import JwksKeySource
from servicekit.logs import configure_logging
from servicekit.migrations import migrate
from servicekit.redis import RedisCache, check_redis_access, create_service_redis
from servicekit.redis_bus import RedisBus
from servicekit.settings import load_settings, require_settings
from servicekit.tags import TaggedBus, TaggedCache, Tags
from servicekit.tokens import KeySource, TokenVerifier
from servicekit.web import Check, create_base_app, health_router

VERSION = "1.0.0"
PURGE_INTERVAL_SECONDS = 600.0
log = logging.getLogger(__name__)


def routers() -> list[APIRouter]:
    return [order_router.router]


@dataclass(frozen=True)
class Adapters:
    """What the service shares with others: Redis and the user service over HTTP in the
    distributed deployment, in-process twins in tests. ``checks`` join the database's in
    ``/ready``; ``beside`` runs next to the service for its lifetime (tests: a user service
    answering on the in-process bus); ``close`` runs last."""

    cache: Cache
    bus: MessageBus
    keys: KeySource
    user_service: httpx.AsyncClient | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    beside: Callable[[], contextlib.AbstractAsyncContextManager[object]] | None = None
    close: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def redis(cls, settings: OrderSettings) -> Adapters:
        """Redis with the settings' credentials and TLS, what is read from it checked with
        the signing key; a start first checks that Redis lets us in (and that there is a
        key): a refusal stops it, an unreachable Redis does not."""
        redis = create_service_redis(settings)
        user_service = httpx.AsyncClient(
            base_url=str(settings.user_service_url).rstrip("/"),
            timeout=settings.user_service_timeout,
            headers={"User-Agent": settings.service_name},
        )
        keys = settings.redis_signing_keys()
        tags = Tags(keys) if keys else None
        jwks = JwksKeySource(user_service, JWKS_PATH, cooldown=settings.jwks_cooldown_seconds)

        @contextlib.asynccontextmanager
        async def checked_at_start() -> AsyncIterator[None]:
            if tags is None:
                raise StartRefused("REDIS_SIGNING_KEY is required by the distributed deployment")
            await check_redis_access(redis)
            # The token keys are refetched on the JWKS's max-age, so a withdrawn key goes.
            async with jwks.refreshing():
                yield

        async def close() -> None:
            await user_service.aclose()
            await redis.aclose()

        cache: Cache = RedisCache(redis)
        bus: MessageBus = RedisBus(redis)
        return cls(
            cache=TaggedCache(cache, tags) if tags is not None else cache,
            bus=TaggedBus(bus, tags, TAGGED_CHANNELS) if tags is not None else bus,
            keys=jwks,
            user_service=user_service,
            checks={"redis": redis.ping},
            beside=checked_at_start,
            close=close,
        )


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
        fallback = (
            HttpUserVerifier(user_service, token=settings.internal_api_token.get_secret_value())
            if user_service is not None
            else None
        )

        def new_uow(*, read_only: bool = False) -> SqlOrderUnitOfWork:
            return SqlOrderUnitOfWork(lookups if read_only else sessions)

        writer = SqlOrderWriter(engine)
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
    new_uow: Callable[[], SqlOrderUnitOfWork], interval: float = PURGE_INTERVAL_SECONDS
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


def create_app(
    settings: OrderSettings | None = None, *, adapters: Adapters | None = None
) -> FastAPI:
    """The Order Service's app: its database from the settings, Redis and the user service
    over HTTP unless other adapters are given."""
    settings = settings or load_settings(OrderSettings)
    engine = create_service_engine(settings)
    shared = adapters or Adapters.redis(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            if shared.close is not None:
                stack.push_async_callback(shared.close)
            if shared.beside is not None:
                await stack.enter_async_context(shared.beside())
            state = await stack.enter_async_context(
                build_order_service(
                    settings,
                    cache=shared.cache,
                    bus=shared.bus,
                    keys=shared.keys,
                    user_service=shared.user_service,
                    engine=engine,
                )
            )
            await shared.bus.start()
            stack.push_async_callback(shared.bus.close)
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
        health_router("order_service", {"database": database_check(engine), **shared.checks})
    )
    return app


@functools.cache
def _app() -> FastAPI:
    settings = require_settings(
        load_settings(OrderSettings), "redis_signing_key", reason="by the distributed deployment"
    )
    configure_logging(settings.service_name, settings.log_level)
    return create_app(settings)


def __getattr__(name: str) -> Any:
    # `uvicorn order_service.main:app` builds the app on first access, not at import.
    if name == "app":
        return _app()
    raise AttributeError(name)
