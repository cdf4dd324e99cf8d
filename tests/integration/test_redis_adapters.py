"""The Redis adapters of the cache and bus ports, on a private redis-server."""

import asyncio
import json

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from devstack import free_port
from devstack.aio import RedisServer
from servicekit.errors import DependencyUnavailable
from servicekit.faults import is_dependency_fault
from servicekit.redis import RedisCache, create_redis
from servicekit.redis_bus import RedisBus
from servicekit.resp import PipelinedClient, RedisAddress
from tests.support.tcp_proxy import tcp_proxy


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


async def _until_unsubscribed(bus: RedisBus) -> None:
    async with asyncio.timeout(10):  # a bound for failure, not a measurement
        while bus.subscribed.is_set():  # noqa: ASYNC110 (no event for "lost")
            await asyncio.sleep(0.05)


async def test_bus_resubscribes_after_the_server_comes_back(
    redis_server: RedisServer, redis_client: Redis
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
        await _until_unsubscribed(bus)
        await redis_server.start()
        await asyncio.wait_for(bus.subscribed.wait(), 10)
        assert await bus.publish("chan-b", b"again") == 1
        assert await asyncio.wait_for(got.get(), 5) == b"again"
    finally:
        await bus.close()


async def test_a_dead_server_is_a_connection_error_that_the_api_maps_to_503() -> None:
    redis = create_redis("127.0.0.1", free_port(), name="test", connect_timeout=0.25, timeout=0.25)
    cache = RedisCache(redis)
    with pytest.raises(DependencyUnavailable, match=r"redis at 127\.0\.0\.1:\d+") as caught:
        await cache.get("user:x")
    assert isinstance(caught.value.__cause__, redis_errors.ConnectionError)
    assert is_dependency_fault(caught.value)
    await redis.aclose()


async def _command_calls(redis: Redis, command: str) -> int:
    stats = await redis.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


async def test_concurrent_reads_share_round_trips_and_each_gets_its_own_key(
    redis_client: Redis,
) -> None:
    cache = RedisCache(redis_client)
    keys = [f"user:{n}" for n in range(50)]
    for n, key in enumerate(keys[:40]):  # the last ten are absent
        await redis_client.set(key, _value(n, True))
    await redis_client.config_resetstat()
    values = await asyncio.gather(*(cache.get(key) for key in keys))
    assert [json.loads(v)["version"] if v else None for v in values] == [
        *range(40),
        *[None] * 10,
    ]
    round_trips = await _command_calls(redis_client, "get") + await _command_calls(
        redis_client, "mget"
    )
    assert round_trips < len(keys) // 5


async def test_a_read_after_a_write_sees_the_write(redis_client: Redis) -> None:
    """No read joins an answer already on its way: a read begun after a write sees it."""
    cache = RedisCache(redis_client)
    reads = [asyncio.create_task(cache.get("user:rw")) for _ in range(5)]
    await asyncio.sleep(0)  # the first read is out, the others queued, all before the write
    await cache.set("user:rw", _value(7, True), 60)
    assert json.loads(await cache.get("user:rw") or b"{}")["version"] == 7
    await asyncio.gather(*reads)


async def test_every_queued_read_gets_the_fault_and_the_cache_recovers(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    cache = RedisCache(redis_client)
    await redis_client.set("user:f", _value(1, True))
    await redis_server.stop()
    results = await asyncio.gather(
        *(cache.get("user:f") for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, BaseException) and is_dependency_fault(r) for r in results), results
    await redis_server.start()
    await redis_client.set("user:f", _value(2, True))
    values = await asyncio.gather(*(cache.get("user:f") for _ in range(10)))
    assert {json.loads(v or b"{}")["version"] for v in values} == {2}


def _bus_client(port: int, *, name: str = "bus-test") -> Redis:
    return create_redis("127.0.0.1", port, name=name, connect_timeout=0.25, timeout=0.25)


async def test_pipelined_commands_each_get_their_own_reply_even_when_callers_give_up(
    redis_client: Redis,
) -> None:
    """Many commands in flight on one connection: replies are matched in order, and a caller
    cancelled while waiting leaves its place in line, so no later caller gets its reply."""
    for n in range(60):
        await redis_client.set(f"pipe:{n}", str(n))
    client = PipelinedClient(RedisAddress.of(redis_client))
    try:
        calls = [asyncio.create_task(client.call(b"GET", f"pipe:{n}".encode())) for n in range(60)]
        await asyncio.sleep(0)  # every command written, none answered yet
        for n in range(0, 60, 3):
            calls[n].cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        for n, result in enumerate(results):
            if n % 3 == 0:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == str(n).encode()
        assert await client.call(b"GET", b"pipe:59") == b"59"
        with pytest.raises(redis_errors.ResponseError):
            await client.call(b"NO-SUCH-COMMAND")
        assert await client.call(b"GET", b"pipe:7") == b"7"
    finally:
        await client.close()


async def test_the_bus_connections_carry_the_client_name(redis_client: Redis) -> None:
    async def ignore(_: bytes) -> None:
        return None

    bus = RedisBus(_bus_client(redis_client.connection_pool.connection_kwargs["port"]))
    bus.subscribe("chan-named", ignore)
    await bus.start()
    try:
        await bus.publish("chan-named", b"x")
        names = [entry["name"] for entry in await redis_client.client_list()]
        assert names.count("bus-test") == 2, names  # the subscriber and the publisher
    finally:
        await bus.close()


async def test_a_publish_to_a_dead_server_is_a_dependency_fault_and_heals(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    bus = RedisBus(redis_client)
    assert await bus.publish("chan-c", b"before") == 0
    await redis_server.stop()
    with pytest.raises(
        DependencyUnavailable, match=f"redis at 127.0.0.1:{redis_server.port}"
    ) as caught:
        await bus.publish("chan-c", b"during")
    assert isinstance(caught.value.__cause__, redis_errors.ConnectionError)
    assert is_dependency_fault(caught.value)
    await redis_server.start()
    assert await bus.publish("chan-c", b"after") == 0
    await bus.close()


async def test_a_silent_server_times_out_the_publisher_and_the_subscriber_notices(
    redis_server: RedisServer,
) -> None:
    """Through a proxy that stops forwarding (a hung server): a publish fails with a timeout
    instead of hanging, the subscription is found dead by its PING and given up, and both
    work again once the server answers."""
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(message: bytes) -> None:
        await got.put(message)

    async with tcp_proxy("127.0.0.1", redis_server.port) as proxy:
        client = _bus_client(proxy.port)
        bus = RedisBus(client, poll_interval=0.2, reconnect_delay=0.05, max_reconnect_delay=0.2)
        bus.subscribe("chan-d", handler)
        await bus.start()
        try:
            assert await bus.publish("chan-d", b"one") == 1
            assert await asyncio.wait_for(got.get(), 5) == b"one"
            proxy.stall()
            with pytest.raises(DependencyUnavailable) as caught:
                await bus.publish("chan-d", b"lost")
            assert isinstance(caught.value.__cause__, redis_errors.TimeoutError)
            assert is_dependency_fault(caught.value)
            await _until_unsubscribed(bus)
            await proxy.restore()
            await asyncio.wait_for(bus.subscribed.wait(), 10)
            assert await bus.publish("chan-d", b"two") == 1
            # The failed publish may still arrive (the proxy delivers what it held): a failed
            # publish means "unknown", which the verifier treats as no answer.
            earlier = []
            async with asyncio.timeout(5):
                while (message := await got.get()) != b"two":
                    earlier.append(message)
            assert earlier in ([], [b"lost"])
        finally:
            await bus.close()
            await client.aclose()
