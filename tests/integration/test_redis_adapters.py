"""The Redis adapters of the cache and bus ports, on a private redis-server."""

import asyncio
import json

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from servicekit.bus import RedisBus
from servicekit.cache import RedisCache
from servicekit.errors import is_dependency_fault
from servicekit.redis import create_redis
from tests.support.backing import PrivateRedis, free_port


def _value(version: int, active: bool) -> bytes:
    return json.dumps({"id": "x", "version": version, "active": active}).encode()


async def test_set_if_newer_is_a_compare_and_set_on_the_server(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    assert await cache.set_if_newer("user:a", _value(5, False), 5, 3600)
    assert not await cache.set_if_newer("user:a", _value(4, True), 4, 3600)
    assert json.loads(await cache.get("user:a") or b"{}")["active"] is False
    assert 3590 <= await redis_client.ttl("user:a") <= 3600
    await redis_client.set("user:b", b"not json")
    assert await cache.set_if_newer("user:b", _value(1, True), 1, 60)
    await cache.delete("user:a")
    assert await cache.get("user:a") is None


async def test_bus_publishes_to_subscribers_and_counts_them(redis_client: Redis) -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(message: bytes) -> None:
        await got.put(message)

    listener = RedisBus(redis_client)
    listener.subscribe("chan-a", handler)
    await listener.start()
    try:
        assert await listener.publish("chan-a", b"one") == 1
        assert await asyncio.wait_for(got.get(), 5) == b"one"
        assert await listener.publish("chan-nobody", b"x") == 0
    finally:
        await listener.close()


async def test_bus_resubscribes_after_the_server_comes_back(
    redis_server: PrivateRedis, redis_client: Redis
) -> None:
    """Stop Redis under a subscribed bus; after a restart on the same port the bus listens
    again by itself."""
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(message: bytes) -> None:
        await got.put(message)

    bus = RedisBus(redis_client, poll_interval=0.2)
    bus.subscribe("chan-b", handler)
    await bus.start()
    try:
        await redis_server.stop()
        async with asyncio.timeout(10):  # a bound for failure, not a measurement
            while bus.subscribed.is_set():  # noqa: ASYNC110 (no event for "lost")
                await asyncio.sleep(0.05)
        await redis_server.start()
        await asyncio.wait_for(bus.subscribed.wait(), 10)
        assert await bus.publish("chan-b", b"again") == 1
        assert await asyncio.wait_for(got.get(), 5) == b"again"
    finally:
        await bus.close()


async def test_a_dead_server_is_a_connection_error_that_the_api_maps_to_503() -> None:
    redis = create_redis("127.0.0.1", free_port(), name="test", connect_timeout=0.25, timeout=0.25)
    cache = RedisCache(redis)
    with pytest.raises(redis_errors.ConnectionError) as caught:
        await cache.get("user:x")
    assert is_dependency_fault(caught.value)
    await redis.aclose()
