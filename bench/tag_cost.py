"""Where the tag check's time goes on a cache hit, against a private redis-server.

``python -m bench.tag_cost [--rounds N]`` (a benchmark: run it under the bench lock). Prints
medians in microseconds, of three kinds:

- reads: a cache read of a user's entry and its parsing, unchecked, checked (each read in
  full, or remembered once verified), and checked in full without ``TaggedCache``'s own
  ``await`` (the check called inline after the plain read), in interleaved rounds, in random
  order within a round;
- pieces, after a read: the full check and each of its steps, timed as the first thing done
  after a ``GET`` returns (the state a hit is in: the process just woke from its wait on the
  network), one piece per read, in turn;
- pieces, in a loop: the same steps repeated back to back (``timeit``, best of 5).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import random
import statistics
import tempfile
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from contracts import CachedUser, user_cache_key
from devstack import RedisServer
from servicekit.redis import RedisCache, create_redis
from servicekit.tags import RememberedTags, TaggedCache, Tags

KEY = b"bench-tag-cost-key-0123456789abcdef"
_TAG_MEMBER = b'"tag":"'


def _pieces(tags: Tags, place: str, tagged: bytes) -> dict[str, Callable[[], object]]:
    """The full check and its steps (as ``Tags.check`` takes them), and the alternatives."""
    start = tagged.rfind(_TAG_MEMBER)
    expires, _, mac = tagged[start + len(_TAG_MEMBER) : -2].partition(b".")
    value = tagged[: start - 1] + b"}"
    given = base64.urlsafe_b64decode(mac + b"=")
    keyed_hmac = hmac.new(KEY, digestmod=hashlib.sha256)
    keyed_blake2b = hashlib.blake2b(key=KEY, digest_size=32)
    header = b"%s\n%s\n" % (place.encode(), expires)
    remembered = RememberedTags(tags)
    remembered.verify(place, tagged)

    def split() -> object:
        at = tagged.rfind(_TAG_MEMBER)
        found, _, _ = tagged[at + len(_TAG_MEMBER) : -2].partition(b".")
        return found.isdigit(), tagged[: at - 1] + b"}"

    def mac_with(keyed: Any) -> Callable[[], bytes]:
        def compute() -> bytes:
            running = keyed.copy()
            running.update(b"%s\n%s\n" % (place.encode(), expires))
            running.update(value)
            digest: bytes = running.digest()
            return digest

        return compute

    return {
        "nothing (the timer alone)": lambda: None,
        "full check (Tags.verify)": lambda: tags.verify(place, tagged),
        "  split off the tag": split,
        "  base64 decode": lambda: base64.urlsafe_b64decode(mac + b"="),
        "  HMAC-SHA256 (prepared, copied)": mac_with(keyed_hmac),
        "  compare_digest": lambda: hmac.compare_digest(given, given),
        "  expiry (clock)": lambda: int(expires) < time.time(),
        "keyed BLAKE2b (prepared, copied)": mac_with(keyed_blake2b),
        "remembered check (RememberedTags)": lambda: remembered.verify(place, tagged),
        "parse (CachedUser)": lambda: CachedUser.model_validate_json(value),
        "header bytes only": lambda: b"%s\n%s\n" % (place.encode(), expires) == header,
    }


async def _measure(port: int, rounds: int) -> dict[str, dict[str, float]]:
    redis = create_redis("127.0.0.1", port, name="bench-tag-cost", connect_timeout=1, timeout=1)
    tags = Tags([KEY])
    user_id = uuid.uuid4()
    place = user_cache_key(user_id)
    entry = CachedUser(id=user_id, email="ada@example.com", active=True, version=3)
    plain = RedisCache(redis)
    remembered = TaggedCache(RedisCache(redis), tags)
    full = TaggedCache(RedisCache(redis), tags, remember=0)
    await remembered.set(place, entry.model_dump_json().encode(), 3600)
    tagged = await plain.get(place)
    assert tagged is not None

    async def parsed(read: Awaitable[bytes | None]) -> None:
        value = await read
        assert value is not None
        CachedUser.model_validate_json(value)

    async def inline() -> None:
        value = await plain.get(place)
        assert value is not None
        CachedUser.model_validate_json(tags.verify(place, value))

    reads: dict[str, Callable[[], Awaitable[object]]] = {
        "raw GET (redis-py)": lambda: redis.get(place),
        "unchecked": lambda: parsed(plain.get(place)),
        "checked, remembered (TaggedCache)": lambda: parsed(remembered.get(place)),
        "checked in full (TaggedCache, remember=0)": lambda: parsed(full.get(place)),
        "checked in full, inline (no await of its own)": inline,
    }
    pieces = _pieces(tags, place, tagged)
    timed: dict[str, list[float]] = {name: [] for name in reads}
    after_read: dict[str, list[float]] = {name: [] for name in pieces}
    names = list(reads)
    for n in range(rounds + rounds // 10):  # the first tenth warms up, untimed
        random.shuffle(names)
        for name in names:
            started = time.perf_counter_ns()
            await reads[name]()
            timed[name].append((time.perf_counter_ns() - started) / 1000)
        piece = list(pieces)[n % len(pieces)]
        for _ in range(2):
            await redis.get(place)
            started = time.perf_counter_ns()
            pieces[piece]()
            after_read[piece].append((time.perf_counter_ns() - started) / 1000)
        if n == rounds // 10:
            for samples in (*timed.values(), *after_read.values()):
                samples.clear()
    await redis.aclose()
    in_loop = {
        name: min(timeit.repeat(call, number=20_000, repeat=5)) / 20_000 * 1e6
        for name, call in pieces.items()
    }
    return {
        "reads": {name: statistics.median(samples) for name, samples in timed.items()},
        "pieces, after a read": {
            name: statistics.median(samples) for name, samples in after_read.items()
        },
        "pieces, in a loop": in_loop,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer.on_free_port(Path(workdir))
        server.start()
        try:
            result = uvloop.run(_measure(server.port, args.rounds))
        finally:
            server.stop()
    for title, rows in result.items():
        print(title)
        for name, micros in rows.items():
            print(f"  {name:<48} {micros:8.2f} us")


if __name__ == "__main__":
    main()
