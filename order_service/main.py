"""The Order Service's composition root: builds its parts, and its app for port 8002.

``build_order_service`` takes its adapters as arguments; ``create_app`` is the one assembly of
the service's own app, with Redis adapters (the distributed deployment) unless others are
given (the tests). The single process (``app.main``) serves this service's routers beside the
user service's. Nothing connects at import.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import JWKS_PATH, TAGGED_CHANNELS
from order_service.adapters.order_reads import (
    PostgresOrderViews,
    RenderedViews,
    SqlOrderReads,
)
from order_service.adapters.order_writer import PostgresOrderWriter, SqlOrderWriter
from order_service.adapters.sql_unit_of_work import SqlOrderUnitOfWork
from order_service.adapters.user_verifier import CachedBusUserVerifier, HttpUserVerifier
from order_service.core.config import OrderSettings
from order_service.core.database import MIGRATIONS, VERSION_TABLE
from order_service.core.metrics import OrderMetrics
from order_service.domain import RenderedOrder
from order_service.routers import order_router
from order_service.routers.dependencies import STATE_KEY, OrderServiceState
from order_service.schemas import order_json
from order_service.services import order_service
from order_service.services.ports import OrderViews
from servicekit.bus import MessageBus
from servicekit.cache import Cache
from servicekit.composition import assemble_service_app
from servicekit.database import create_service_engine, create_session_factory
from servicekit.errors import StartRefused
from servicekit.housekeeping import repeated
from servicekit.jwks import JwksKeySource
from servicekit.logs import configure_logging
from servicekit.migrations import migrate
from servicekit.outbound import send_request_id
from servicekit.postgres import PostgresLookups
from servicekit.redis import RedisCache, check_redis_access, create_service_redis
from servicekit.redis_bus import RedisBus
from servicekit.settings import load_settings, require_settings
from servicekit.tags import TaggedBus, TaggedCache, Tags
from servicekit.telemetry import Telemetry, telemetry_from_environment
from servicekit.tokens import KeySource, TokenVerifier
from servicekit.tracing import instrument_engine, instrument_httpx, instrument_redis
from servicekit.web import Check

VERSION = "1.0.0"


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
    def redis(cls, settings: OrderSettings, telemetry: Telemetry | None = None) -> Adapters:
        """Redis with the settings' credentials and TLS, what is read from it checked with
        the signing key; a start first checks that Redis lets us in (and that there is a
        key): a refusal stops it, an unreachable Redis does not. ``telemetry``: Redis faults
        counted, Redis commands and the calls to the user service (JWKS, verification
        fallback) traced when tracing is on."""
        telemetry = telemetry or Telemetry.off()
        redis = create_service_redis(settings)
        instrument_redis(redis, telemetry.tracing)
        user_service = httpx.AsyncClient(
            base_url=str(settings.user_service_url).rstrip("/"),
            timeout=settings.user_service_timeout,
            headers={"User-Agent": settings.service_name},
            event_hooks={"request": [send_request_id]},
        )
        instrument_httpx(user_service, telemetry.tracing)
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

        on_fault = telemetry.metrics.redis_fault
        cache: Cache = RedisCache(redis, on_fault=on_fault)
        bus: MessageBus = RedisBus(
            redis, tracer=telemetry.tracer("servicekit.redis_bus"), on_fault=on_fault
        )
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
    telemetry: Telemetry | None = None,
) -> AsyncIterator[OrderServiceState]:
    """Everything the service needs, disposed in reverse order. Subscribes to verification
    replies; the owner of the bus starts it. Without ``user_service`` there is no HTTP
    fallback (the single process, where the bus always has a listener). The service's
    metrics go to ``telemetry``'s registry (once per registry)."""
    telemetry = telemetry or Telemetry.off()
    metrics = OrderMetrics(telemetry.metrics)
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

        views: OrderViews[RenderedOrder] = RenderedViews(SqlOrderReads(lookups), order_json)
        postgres = PostgresLookups.of(
            settings,
            tracer=telemetry.tracer("order_service.postgres"),
            on_fault=telemetry.metrics.postgres_fault,
        )
        if postgres is not None:
            await postgres.start()
            stack.push_async_callback(postgres.close)
            telemetry.metrics.watch_pool(f"{settings.service_name}.asyncpg", postgres.pool_figures)
            views = PostgresOrderViews(postgres)

        traced = telemetry.tracing is not None
        writer = (
            SqlOrderWriter(engine, metrics=metrics, traced=traced)
            if postgres is None
            else PostgresOrderWriter(engine, postgres, metrics=metrics, traced=traced)
        )
        stack.push_async_callback(writer.close)
        await stack.enter_async_context(
            repeated(
                lambda: order_service.purge_expired_idempotency_keys(new_uow()),
                every_seconds=settings.idempotency_purge_interval_seconds,
                what="expired idempotency keys",
            )
        )
        yield OrderServiceState(
            settings=settings,
            new_uow=new_uow,
            views=views,
            writer=writer,
            users=CachedBusUserVerifier(
                cache,
                bus,
                timeout=settings.user_verification_timeout,
                fallback=fallback,
                metrics=metrics,
                tracer=telemetry.tracer("order_service.user_verifier"),
            ),
            token_verifier=TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            ),
            metrics=metrics,
        )


def create_app(
    settings: OrderSettings | None = None,
    *,
    adapters: Adapters | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """The Order Service's app: its database from the settings, Redis and the user service
    over HTTP unless other adapters are given; metrics as the settings say and traces as the
    ``OTEL_*`` variables say, unless ``telemetry`` is given."""
    settings = settings or load_settings(OrderSettings)
    telemetry = telemetry or telemetry_from_environment(
        settings.service_name, metrics_enabled=settings.metrics_enabled
    )
    engine = create_service_engine(settings)
    telemetry.metrics.watch_engine(engine, settings.service_name)
    instrument_engine(engine, telemetry.tracing)
    shared = adapters or Adapters.redis(settings, telemetry)

    return assemble_service_app(
        name="order_service",
        state_key=STATE_KEY,
        routers=routers(),
        engine=engine,
        shared=shared,
        telemetry=telemetry,
        build=lambda: build_order_service(
            settings,
            cache=shared.cache,
            bus=shared.bus,
            keys=shared.keys,
            user_service=shared.user_service,
            engine=engine,
            telemetry=telemetry,
        ),
        title="Order Service",
        version=VERSION,
        max_body_bytes=settings.max_body_bytes,
        description="Orders of verified users.",
        token_url=settings.public_token_url,
    )


@functools.cache
def _app() -> FastAPI:
    settings = require_settings(
        load_settings(OrderSettings), "redis_signing_key", reason="by the distributed deployment"
    )
    telemetry = telemetry_from_environment(
        settings.service_name, metrics_enabled=settings.metrics_enabled
    )
    configure_logging(settings.service_name, settings.log_level, traces=bool(telemetry.tracing))
    return create_app(settings, telemetry=telemetry)


def __getattr__(name: str) -> Any:
    # `uvicorn order_service.main:app` builds the app on first access, not at import.
    if name == "app":
        return _app()
    raise AttributeError(name)
