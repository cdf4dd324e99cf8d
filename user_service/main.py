"""The User Service's composition root: builds its parts, and its app for port 8001.

``build_user_service`` takes its adapters as arguments, so the single process passes
in-process ones and the distributed deployment Redis ones; nothing connects at import.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import VERIFY_USER_CHANNEL
from servicekit.bus import MessageBus
from servicekit.cache import Cache
from servicekit.database import create_service_engine, create_session_factory, database_check
from servicekit.logs import configure_logging
from servicekit.migrations import migrate
from servicekit.postgres import PostgresLookups
from servicekit.ratelimit import RateLimiter
from servicekit.redis import RedisCache, RedisRateLimiter, create_redis
from servicekit.redis_bus import RedisBus
from servicekit.settings import load_settings
from servicekit.tokens import StaticKeySource, TokenVerifier
from servicekit.web import create_base_app, health_router
from user_service.core.auth import KeyRing, PasswordHasher, TokenIssuer, load_or_create_dev_key
from user_service.core.config import UserSettings, configured_signing_keys
from user_service.core.database import MIGRATIONS, VERSION_TABLE, UserUnitOfWork
from user_service.core.state import UserServiceState
from user_service.repositories.user_repository import (
    USER_CHANGES_CHANNEL,
    USER_CHANGES_SENDER_EXISTS,
    PostgresUserStates,
    RememberedUserStates,
    SessionUserStates,
    UserStates,
)
from user_service.routers import auth_router, user_router
from user_service.routers.dependencies import STATE_KEY
from user_service.routers.verification_consumer import verification_handler

VERSION = "1.0.0"


def routers() -> list[APIRouter]:
    return [user_router.router, auth_router.router]


@contextlib.asynccontextmanager
async def build_user_service(
    settings: UserSettings,
    *,
    cache: Cache,
    bus: MessageBus,
    limiter: RateLimiter,
    engine: AsyncEngine | None = None,
) -> AsyncIterator[UserServiceState]:
    """Everything the service needs, disposed in reverse order. Subscribes its bus consumer;
    the owner of the bus starts it."""
    async with contextlib.AsyncExitStack() as stack:
        if engine is None:
            engine = create_service_engine(settings)
            stack.push_async_callback(engine.dispose)
        if settings.migrate_on_start:
            await migrate(engine, MIGRATIONS, VERSION_TABLE)
        sessions = create_session_factory(engine)
        lookups = create_session_factory(engine, read_only=True)

        def new_uow(*, read_only: bool = False) -> UserUnitOfWork:
            return UserUnitOfWork(lookups if read_only else sessions)

        user_states: UserStates = SessionUserStates(lookups)
        postgres = PostgresLookups.of(settings)
        if postgres is not None:
            await postgres.start()
            stack.push_async_callback(postgres.close)
            listener = postgres.listener(USER_CHANGES_CHANNEL)
            remembered = RememberedUserStates(
                PostgresUserStates(postgres), live=lambda: listener.live
            )
            await listener.start(
                on_notify=remembered.changed,
                on_reset=remembered.forget_all,
                sender_exists=USER_CHANGES_SENDER_EXISTS,
            )
            stack.push_async_callback(listener.close)
            user_states = remembered

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
            user_states=user_states,
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
        )
        bus.subscribe(VERIFY_USER_CHANNEL, verification_handler(state, bus))
        yield state


def create_app(settings: UserSettings | None = None) -> FastAPI:
    """The distributed User Service: Postgres and Redis from the environment."""
    settings = settings or load_settings(UserSettings)
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
            state = await stack.enter_async_context(
                build_user_service(
                    settings,
                    cache=RedisCache(redis),
                    bus=bus,
                    limiter=RedisRateLimiter(redis),
                    engine=engine,
                )
            )
            await bus.start()
            stack.push_async_callback(bus.close)
            yield {STATE_KEY: state}

    app = create_base_app(
        title="User Service",
        version=VERSION,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        description="Accounts, login and token keys.",
        cors_origins=settings.cors_allow_origins,
        cors_allow_credentials=settings.cors_allow_credentials,
    )
    for router in routers():
        app.include_router(router)
    app.include_router(
        health_router("user_service", {"database": database_check(engine), "redis": redis.ping})
    )
    return app


@functools.cache
def _app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    # `uvicorn user_service.main:app` builds the app on first access, not at import.
    if name == "app":
        return _app()
    raise AttributeError(name)
