"""The in-process twins of the bus and cache ports behave like their Redis adapters."""

import asyncio
import json

from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache


async def test_publish_counts_subscribers_and_delivers_to_each() -> None:
    bus = InMemoryBus()
    got: list[tuple[str, bytes]] = []

    async def first(message: bytes) -> None:
        got.append(("first", message))

    async def second(message: bytes) -> None:
        got.append(("second", message))

    bus.subscribe("news", first)
    bus.subscribe("news", second)
    assert await bus.publish("news", b"hello") == 2
    assert await bus.publish("elsewhere", b"lost") == 0
    await bus.close()
    assert sorted(got) == [("first", b"hello"), ("second", b"hello")]


async def test_delivery_is_asynchronous_and_a_failing_handler_hurts_no_one() -> None:
    bus = InMemoryBus()
    got: list[bytes] = []

    async def broken(message: bytes) -> None:
        raise RuntimeError("boom")

    async def fine(message: bytes) -> None:
        got.append(message)

    bus.subscribe("c", broken)
    bus.subscribe("c", fine)
    assert await bus.publish("c", b"1") == 2
    assert got == []  # not delivered inside publish, as with a broker
    await asyncio.sleep(0)
    await bus.close()
    assert got == [b"1"]


async def test_cache_entries_expire() -> None:
    now = [1000.0]
    cache = InMemoryCache(clock=lambda: now[0])
    await cache.set("k", b"v", ttl_seconds=10)
    now[0] += 9.9
    assert await cache.get("k") == b"v"
    now[0] += 0.2
    assert await cache.get("k") is None


async def test_set_if_newer_keeps_the_newest_version() -> None:
    cache = InMemoryCache()

    def value(version: int, active: bool) -> bytes:
        return json.dumps({"version": version, "active": active}).encode()

    assert await cache.set_if_newer("u", value(2, False), 2, 60)
    assert not await cache.set_if_newer("u", value(1, True), 1, 60)
    assert json.loads(await cache.get("u") or b"{}") == {"version": 2, "active": False}
    assert await cache.set_if_newer("u", value(2, False), 2, 60)  # same version: refresh
    assert await cache.set_if_newer("u", value(3, True), 3, 60)
    await cache.delete("u")
    assert await cache.get("u") is None
