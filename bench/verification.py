"""User verification on its own, in microseconds, beside a raw Redis round trip.

Calls the Order Service's real adapter (``CachedBusUserVerifier`` over ``RedisCache`` and
``RedisBus``, and ``HttpUserVerifier``) against the running distributed user service:
- raw: one ``GET`` on the same Redis client, the floor of any cache read (the targets'
  floor); and one on the bus's own connection (``servicekit.resp``), which is leaner, shown
  beside it so that the pub/sub figure can be read against either;
- cache hit: ``verify`` with ``user:{id}`` present, its tag checked (``servicekit.tags``,
  with the services' key from ``REDIS_SIGNING_KEY``) as the order service checks it, the
  entry's bytes remembered once verified; the same read with the full check every time
  (``cache_hit_first_read``: what the first read of an entry costs); and the same read with no
  tag check (``cache_hit_unchecked``: the entry parsed as it is, tag and all), to show what
  the check costs;
- pub/sub: ``verify`` after the key was deleted (untimed), so the answer comes on the bus;
- HTTP fallback: the internal endpoint of the user service.
All are measured in interleaved rounds, so that noise on the machine hits them alike.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvloop

from contracts import TAGGED_CHANNELS, user_cache_key
from order_service.adapters.user_verifier import CachedBusUserVerifier, HttpUserVerifier
from servicekit.cache import Cache
from servicekit.redis import RedisCache, create_redis
from servicekit.redis_bus import RedisBus
from servicekit.resp import PipelinedClient, RedisAddress
from servicekit.tags import TaggedBus, TaggedCache, Tags


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(ordered),
        "p50_us": round(statistics.median(ordered), 1),
        "p90_us": pick(0.90),
        "p99_us": pick(0.99),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


async def _time(call: Callable[..., Awaitable[Any]], *args: Any) -> float:
    started = time.perf_counter_ns()
    await call(*args)
    return (time.perf_counter_ns() - started) / 1000


async def _measure(
    redis_port: int, user_service_url: str, internal_token: str, user_ids: list[str], rounds: int
) -> dict[str, Any]:
    redis = create_redis(
        "127.0.0.1", redis_port, name="bench-verification", connect_timeout=1.0, timeout=1.0
    )
    tags = Tags([os.environ["REDIS_SIGNING_KEY"].encode()])
    bus = TaggedBus(RedisBus(redis), tags, TAGGED_CHANNELS)
    verifier = CachedBusUserVerifier(
        TaggedCache(RedisCache(redis), tags), bus, timeout=1.0, fallback=None
    )
    # The cache-hit timings on verifiers of their own, built and warmed alike, checking tags
    # as the service does, checking them in full on every read, and not checking them: the
    # one that also serves the bus path is slower on a hit for reasons of its own, which
    # would be taken for the tags' cost.
    hits: dict[str, Cache] = {
        "cache_hit": TaggedCache(RedisCache(redis), tags),
        "cache_hit_first_read": TaggedCache(RedisCache(redis), tags, remember=0),
        "cache_hit_unchecked": RedisCache(redis),
    }
    hit_verifiers = {
        name: CachedBusUserVerifier(cache, bus, timeout=1.0, fallback=None)
        for name, cache in hits.items()
    }
    samples: dict[str, list[float]] = {
        "raw_redis_get": [],
        "raw_bus_get": [],
        **{name: [] for name in hits},
        "pubsub": [],
        "http": [],
    }
    bus_connection = PipelinedClient(RedisAddress.of(redis))
    async with httpx.AsyncClient(base_url=user_service_url, timeout=2.0) as http:
        fallback = HttpUserVerifier(http, token=internal_token)
        await bus.start()
        try:
            ids = [uuid.UUID(u) for u in user_ids]
            keys = [user_cache_key(u) for u in ids]
            # Warm every path (connections, caches of the services) before timing.
            for user_id in ids:
                await fallback.verify(user_id)
                await verifier.verify(user_id)
                for hit_verifier in hit_verifiers.values():
                    await hit_verifier.verify(user_id)

            def from_cache(hit_verifier: CachedBusUserVerifier) -> Callable[..., Awaitable[None]]:
                async def read(user_id: uuid.UUID) -> None:
                    check = await hit_verifier.verify(user_id)
                    assert check.source == "cache", check

                return read

            reads = [
                (name, from_cache(hit_verifier)) for name, hit_verifier in hit_verifiers.items()
            ]

            async def from_bus(user_id: uuid.UUID) -> None:
                check = await verifier.verify(user_id)
                assert check.source == "bus", check

            for n in range(rounds):
                user_id, key = ids[n % len(ids)], keys[n % len(ids)]
                raw_key = key.encode()
                # Alternated twice: whichever goes first in a round meets the after-effects of
                # the previous round's calls (the user service refreshing the cache), so both
                # take that place once.
                # The cache-hit reads take turns in first place from pass to pass and from round
                # to round, so that each meets those after-effects as often.
                for first in (n % 2, 1 - n % 2):
                    samples["raw_redis_get"].append(await _time(redis.get, key))
                    turn = (2 * n + first) % len(reads)
                    for name, read in reads[turn:] + reads[:turn]:
                        samples[name].append(await _time(read, user_id))
                    samples["raw_redis_get"].append(await _time(redis.get, key))
                    samples["raw_bus_get"].append(await _time(bus_connection.call, b"GET", raw_key))
                await redis.delete(key)  # untimed: the next call must go to the bus
                samples["pubsub"].append(await _time(from_bus, user_id))
                samples["http"].append(await _time(fallback.verify, user_id))
        finally:
            await bus_connection.close()
            await bus.close()
            await redis.aclose()
    result = {name: _summary(values) for name, values in samples.items()}
    floor = result["raw_redis_get"]["p50_us"]
    for name in ("raw_bus_get", *hits, "pubsub", "http"):
        result[name]["ratio_to_raw_p50"] = round(result[name]["p50_us"] / floor, 2)
    return result


def measure_verification(
    redis_port: int, user_service_url: str, internal_token: str, user_ids: list[str], rounds: int
) -> dict[str, Any]:
    """Run on uvloop, the loop the services run on."""
    return uvloop.run(_measure(redis_port, user_service_url, internal_token, user_ids, rounds))
