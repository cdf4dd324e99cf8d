"""The Redis rate limiter against a real, private redis-server; and failing open without one."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devstack import free_port
from devstack.aio import RedisServer
from servicekit.redis import RedisRateLimiter, create_redis
from tests.support.backing import private_redis


@pytest.fixture(scope="module")
async def redis_port() -> AsyncIterator[int]:
    server: RedisServer
    async with private_redis() as server:
        yield server.port


@pytest.fixture
async def client(redis_port: int) -> AsyncIterator[Redis]:
    redis = create_redis(
        "127.0.0.1", redis_port, name="ratelimit-test", connect_timeout=0.5, timeout=0.5
    )
    yield redis
    await redis.aclose()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_hits_are_counted_on_the_server_with_an_expiry(client: Redis) -> None:
    limiter = RedisRateLimiter(client)
    k = key()
    decisions = [await limiter.hit(k, limit=2, window_seconds=30) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.count for d in decisions] == [1, 2, 3]
    assert 1 <= decisions[-1].retry_after <= 30
    assert await client.get(f"ratelimit:{k}") == b"3"
    assert 0 < await client.ttl(f"ratelimit:{k}") <= 30


async def test_peek_reads_without_counting(client: Redis) -> None:
    limiter = RedisRateLimiter(client)
    k = key()
    fresh = await limiter.peek(k, limit=1, window_seconds=30)
    assert fresh.allowed
    assert fresh.count == 0
    assert await client.exists(f"ratelimit:{k}") == 0
    await limiter.hit(k, limit=1, window_seconds=30)
    blocked = await limiter.peek(k, limit=1, window_seconds=30)
    assert not blocked.allowed
    assert blocked.count == 1


async def test_concurrent_hits_are_atomic(client: Redis) -> None:
    limiter = RedisRateLimiter(client)
    k = key()
    decisions = await asyncio.gather(
        *(limiter.hit(k, limit=10, window_seconds=30) for _ in range(40))
    )
    assert sorted(d.count for d in decisions) == list(range(1, 41))
    assert sum(d.allowed for d in decisions) == 10


async def test_a_key_that_lost_its_expiry_gets_one_back(client: Redis) -> None:
    limiter = RedisRateLimiter(client)
    k = key()
    await client.set(f"ratelimit:{k}", 5)
    decision = await limiter.hit(k, limit=10, window_seconds=30)
    assert decision.count == 6
    assert 0 < await client.ttl(f"ratelimit:{k}") <= 30


async def test_the_window_ends(client: Redis) -> None:
    limiter = RedisRateLimiter(client)
    k = key()
    await limiter.hit(k, limit=1, window_seconds=1)
    assert not (await limiter.hit(k, limit=1, window_seconds=1)).allowed
    for _ in range(50):  # the server expires the key after about a second
        if not await client.exists(f"ratelimit:{k}"):
            break
        await asyncio.sleep(0.1)
    assert (await limiter.hit(k, limit=1, window_seconds=1)).allowed


async def test_no_redis_fails_open_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    dead = create_redis(
        "127.0.0.1", free_port(), name="ratelimit-test", connect_timeout=0.2, timeout=0.2
    )
    limiter = RedisRateLimiter(dead)
    with caplog.at_level(logging.WARNING, logger="servicekit.ratelimit"):
        assert (await limiter.hit(key(), limit=1, window_seconds=30)).allowed
        assert (await limiter.peek(key(), limit=1, window_seconds=30)).allowed
    assert "fail open" in caplog.text
    await dead.aclose()
