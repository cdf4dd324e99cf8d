"""The user service keeps ``user:{user_id}`` right in a real Redis: written on change and
login, overwritten on deactivation, and a deactivation that cannot reach the cache fails."""

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from contracts import CachedUser, user_cache_key
from devstack.aio import RedisServer
from servicekit.bus import InMemoryBus
from servicekit.errors import ServiceUnavailable
from servicekit.ratelimit import InMemoryRateLimiter
from servicekit.redis import RedisCache
from tests.support.deployments import single_process_settings
from user_service.errors import InvalidCredentials
from user_service.main import build_user_service
from user_service.routers.dependencies import UserServiceState
from user_service.services.cached_user import refresh_cached_user
from user_service.services.deactivation import deactivate_user
from user_service.services.login import authenticate
from user_service.services.profile import get_active_user
from user_service.services.registration import register_user

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def state(redis_client: Redis, tmp_path: Path) -> AsyncIterator[UserServiceState]:
    settings, _ = single_process_settings(tmp_path)
    async with build_user_service(
        settings, cache=RedisCache(redis_client), bus=InMemoryBus(), limiter=InMemoryRateLimiter()
    ) as built:
        yield built


async def _register(state: UserServiceState) -> uuid.UUID:
    user = await register_user(
        state.new_uow(),
        state.cache,
        state.hasher,
        email=f"{uuid.uuid4().hex}@example.com",
        password=PASSWORD,
        full_name="Cache Test",
        password_min_length=15,
    )
    return user.id


async def _cached(redis_client: Redis, user_id: uuid.UUID) -> CachedUser:
    raw = await redis_client.get(user_cache_key(user_id))
    assert raw is not None
    return CachedUser.model_validate_json(raw)


async def test_register_writes_the_cache_with_an_hour_ttl(
    state: UserServiceState, redis_client: Redis
) -> None:
    user_id = await _register(state)
    cached = await _cached(redis_client, user_id)
    assert cached.active is True
    assert cached.id == user_id
    assert 3590 <= await redis_client.ttl(user_cache_key(user_id)) <= 3600
    assert set(json.loads(await redis_client.get(user_cache_key(user_id)) or b"{}")) == {
        "id",
        "email",
        "active",
        "version",
        "session_epoch",
    }


async def test_deactivation_overwrites_the_cache_at_once(
    state: UserServiceState, redis_client: Redis
) -> None:
    user_id = await _register(state)
    before = await _cached(redis_client, user_id)
    await deactivate_user(state.new_uow(), state.cache, user_id=user_id)
    after = await _cached(redis_client, user_id)
    assert after.active is False
    assert after.version > before.version


async def test_deactivation_fails_whole_when_redis_is_down(
    state: UserServiceState, redis_client: Redis, redis_server: RedisServer
) -> None:
    user_id = await _register(state)
    await redis_server.stop()
    try:
        with pytest.raises(ServiceUnavailable):
            await deactivate_user(state.new_uow(), state.cache, user_id=user_id)
    finally:
        await redis_server.start()
    # Nothing changed: the account is still active in the database and can log in.
    user = await get_active_user(state.new_uow(), user_id=user_id)
    assert user.is_active
    await deactivate_user(state.new_uow(), state.cache, user_id=user_id)
    assert (await _cached(redis_client, user_id)).active is False


async def test_a_late_login_cannot_bring_back_active_in_the_cache(
    state: UserServiceState, redis_client: Redis
) -> None:
    """A login that read the user before a deactivation and writes the cache after it must
    not mark the user active again for the rest of the hour."""
    user_id = await _register(state)
    stale = await get_active_user(state.new_uow(), user_id=user_id)
    await deactivate_user(state.new_uow(), state.cache, user_id=user_id)
    await refresh_cached_user(state.cache, stale.standing)
    assert (await _cached(redis_client, user_id)).active is False
    with pytest.raises(InvalidCredentials):
        await authenticate(
            state.new_uow(),
            state.cache,
            state.hasher,
            state.issuer,
            email=stale.email,
            password=PASSWORD,
            client_id="test",
        )
