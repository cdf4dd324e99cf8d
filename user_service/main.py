"""The User Service's composition root: ``build_user_service`` assembles its parts,
``create_app`` its app; the distributed deployment (port 8001), the single process and the
tests all go through them.

Both take their adapters as arguments, so the single process and the tests pass in-process
ones and the distributed deployment Redis ones; nothing connects at import.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import TAGGED_CHANNELS, VERIFY_USER_CHANNEL
from servicekit.bus import InMemoryBus, MessageBus
from servicekit.cache import Cache, InMemoryCache
from servicekit.composition import assemble_service_app
from servicekit.database import create_service_engine, create_session_factory
from servicekit.errors import StartRefused
from servicekit.housekeeping import repeated
from servicekit.logs import configure_logging
from servicekit.migrations import migrate
from servicekit.postgres import PostgresLookups
from servicekit.ratelimit import InMemoryRateLimiter, RateLimiter
from servicekit.redis import (
    RedisCache,
    RedisRateLimiter,
    check_redis_access,
    create_service_redis,
)
from servicekit.redis_bus import RedisBus
from servicekit.settings import load_settings, require_settings
from servicekit.tags import TaggedBus, TaggedCache, Tags
from servicekit.telemetry import Telemetry, telemetry_from_environment
from servicekit.tokens import StaticKeySource, TokenVerifier
from servicekit.tracing import instrument_engine, instrument_redis
from servicekit.web import Check
from user_service.adapters.sql_unit_of_work import SqlUserUnitOfWork
from user_service.adapters.user_standings import (
    USER_CHANGES_CHANNEL,
    USER_CHANGES_SENDER_EXISTS,
    PostgresUserProfiles,
    PostgresUserStandings,
    RememberedUserStandings,
    SqlUserProfiles,
    SqlUserStandings,
)
from user_service.core.auth import KeyRing, PasswordHasher, TokenIssuer, load_or_create_dev_key
from user_service.core.config import UserSettings, configured_signing_keys
from user_service.core.database import MIGRATIONS, VERSION_TABLE
from user_service.core.metrics import UserMetrics
from user_service.routers import auth_router, user_router
from user_service.routers.dependencies import STATE_KEY, UserServiceState
from user_service.routers.verification_consumer import verification_handler
from user_service.services.ports import UserProfiles, UserStandings
from user_service.services.sessions import purge_expired_refresh_tokens

__all__ = ["STATE_KEY", "Adapters", "build_user_service", "create_app", "routers"]

VERSION = "1.0.0"


def routers() -> list[APIRouter]:
    return [user_router.router, auth_router.router]


@dataclass(frozen=True)
class Adapters:
    """What the service shares with others: Redis in the distributed deployment, in-process
    twins in tests. ``checks`` join the database's in ``/ready``; ``beside`` runs next to the
    service for its lifetime (Redis: a check at start); ``close`` runs last."""

    cache: Cache
    bus: MessageBus
    limiter: RateLimiter
    checks: dict[str, Check] = field(default_factory=dict)
    beside: Callable[[], contextlib.AbstractAsyncContextManager[object]] | None = None
    close: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def in_process(cls) -> Adapters:
        return cls(InMemoryCache(), InMemoryBus(), InMemoryRateLimiter())

    @classmethod
    def redis(cls, settings: UserSettings, telemetry: Telemetry | None = None) -> Adapters:
        """Redis with the settings' credentials and TLS; cache entries and verification
        replies tagged with the signing key. A start first checks that Redis lets us in (and
        that there is a key): a refusal stops it, an unreachable Redis does not.
        ``telemetry``: Redis faults counted, Redis commands traced when tracing is on."""
        telemetry = telemetry or Telemetry.off()
        redis = create_service_redis(settings)
        instrument_redis(redis, telemetry.tracing)
        on_fault = telemetry.metrics.redis_fault
        keys = settings.redis_signing_keys()
        tags = Tags(keys) if keys else None

        @contextlib.asynccontextmanager
        async def checked_at_start() -> AsyncIterator[None]:
            if tags is None:
                raise StartRefused("REDIS_SIGNING_KEY is required by the distributed deployment")
            await check_redis_access(redis)
            yield

        cache: Cache = RedisCache(redis, on_fault=on_fault)
        bus: MessageBus = RedisBus(
            redis, tracer=telemetry.tracer("servicekit.redis_bus"), on_fault=on_fault
        )
        return cls(
            TaggedCache(cache, tags) if tags is not None else cache,
            TaggedBus(bus, tags, TAGGED_CHANNELS) if tags is not None else bus,
            RedisRateLimiter(redis, on_fault=on_fault),
            checks={"redis": redis.ping},
            beside=checked_at_start,
            close=redis.aclose,
        )


@contextlib.asynccontextmanager
async def build_user_service(
    settings: UserSettings,
    *,
    cache: Cache,
    bus: MessageBus,
    limiter: RateLimiter,
    engine: AsyncEngine | None = None,
    telemetry: Telemetry | None = None,
) -> AsyncIterator[UserServiceState]:
    """Everything the service needs, disposed in reverse order. Subscribes its bus consumer;
    the owner of the bus starts it. The service's metrics go to ``telemetry``'s registry
    (once per registry)."""
    telemetry = telemetry or Telemetry.off()
    async with contextlib.AsyncExitStack() as stack:
        if engine is None:
            engine = create_service_engine(settings)
            stack.push_async_callback(engine.dispose)
        if settings.migrate_on_start:
            await migrate(engine, MIGRATIONS, VERSION_TABLE)
        sessions = create_session_factory(engine)
        lookups = create_session_factory(engine, read_only=True)

        def new_uow(*, read_only: bool = False) -> SqlUserUnitOfWork:
            return SqlUserUnitOfWork(lookups if read_only else sessions)

        user_standings: UserStandings = SqlUserStandings(lookups)
        profiles: UserProfiles = SqlUserProfiles(lookups)
        postgres = PostgresLookups.of(
            settings,
            tracer=telemetry.tracer("user_service.reads"),
            on_fault=telemetry.metrics.postgres_fault,
        )
        if postgres is not None:
            await postgres.start()
            stack.push_async_callback(postgres.close)
            telemetry.metrics.watch_pool(f"{settings.service_name}.asyncpg", postgres.pool_figures)
            profiles = PostgresUserProfiles(postgres)
            listener = postgres.listener(USER_CHANGES_CHANNEL)
            remembered = RememberedUserStandings(
                PostgresUserStandings(postgres),
                live=lambda: listener.live,
                capacity=settings.user_standings_memory_max,
            )
            await listener.start(
                on_notify=remembered.changed,
                on_reset=remembered.forget_all,
                sender_exists=USER_CHANGES_SENDER_EXISTS,
            )
            stack.push_async_callback(listener.close)
            user_standings = remembered

        ring = configured_signing_keys(settings)
        if ring is None:
            dev_key = load_or_create_dev_key(settings.data_dir)
            ring = KeyRing(signer=dev_key, keys=(dev_key,))
        hasher = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            max_concurrency=settings.password_hash_concurrency,
        )
        stack.callback(hasher.close)
        state = UserServiceState(
            settings=settings,
            new_uow=new_uow,
            user_standings=user_standings,
            profiles=profiles,
            cache=cache,
            hasher=hasher,
            limiter=limiter,
            issuer=TokenIssuer(
                ring.signer,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            token_verifier=TokenVerifier(
                StaticKeySource({key.kid: key.public_key for key in ring.keys}),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            ),
            signing_keys=ring.keys,
            metrics=UserMetrics(telemetry.metrics),
        )
        await stack.enter_async_context(
            repeated(
                lambda: purge_expired_refresh_tokens(new_uow()),
                every_seconds=settings.refresh_token_purge_interval_seconds,
                what="expired refresh tokens",
            )
        )
        bus.subscribe(
            VERIFY_USER_CHANNEL,
            verification_handler(
                state, bus, tracer=telemetry.tracer("user_service.verification_consumer")
            ),
        )
        yield state


def create_app(
    settings: UserSettings | None = None,
    *,
    adapters: Adapters | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """The User Service's app: its database from the settings, Redis adapters unless others
    are given; metrics as the settings say and traces as the ``OTEL_*`` variables say, unless
    ``telemetry`` is given."""
    settings = settings or load_settings(UserSettings)
    telemetry = telemetry or telemetry_from_environment(
        settings.service_name, metrics_enabled=settings.metrics_enabled
    )
    engine = create_service_engine(settings)
    telemetry.metrics.watch_engine(engine, settings.service_name)
    instrument_engine(engine, telemetry.tracing)
    shared = adapters or Adapters.redis(settings, telemetry)

    return assemble_service_app(
        name="user_service",
        state_key=STATE_KEY,
        routers=routers(),
        engine=engine,
        shared=shared,
        telemetry=telemetry,
        build=lambda: build_user_service(
            settings,
            cache=shared.cache,
            bus=shared.bus,
            limiter=shared.limiter,
            engine=engine,
            telemetry=telemetry,
        ),
        title="User Service",
        version=VERSION,
        max_body_bytes=settings.max_body_bytes,
        description="Accounts, login and token keys.",
        cors_origins=settings.cors_allow_origins,
        cors_allow_credentials=settings.cors_allow_credentials,
    )


@functools.cache
def _app() -> FastAPI:
    settings = require_settings(
        load_settings(UserSettings), "redis_signing_key", reason="by the distributed deployment"
    )
    telemetry = telemetry_from_environment(
        settings.service_name, metrics_enabled=settings.metrics_enabled
    )
    configure_logging(settings.service_name, settings.log_level, traces=bool(telemetry.tracing))
    return create_app(settings, telemetry=telemetry)


def __getattr__(name: str) -> Any:
    # `uvicorn user_service.main:app` builds the app on first access, not at import.
    if name == "app":
        return _app()
    raise AttributeError(name)
