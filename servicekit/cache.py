"""The cache port, with its in-process twin (the Redis adapter: ``servicekit.redis``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def set_if_newer(self, key: str, value: bytes, version: int, ttl_seconds: int) -> bool:
        """Store ``value`` (a JSON object with a numeric ``version``) unless the stored one
        carries a higher version. Returns whether it was stored."""
        ...

    async def delete(self, key: str) -> None: ...


class InMemoryCache:
    """A dict with expiry on read: the single-process deployment's cache."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[str, tuple[float, bytes]] = {}
        self._now = clock

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at <= self._now():
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._items[key] = (self._now() + ttl_seconds, value)

    async def set_if_newer(self, key: str, value: bytes, version: int, ttl_seconds: int) -> bool:
        current = await self.get(key)
        if current is not None and version_of(current) > version:
            return False
        await self.set(key, value, ttl_seconds)
        return True

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)


def version_of(value: bytes) -> int:
    try:
        return int(json.loads(value).get("version", -1))
    except (ValueError, TypeError, AttributeError):
        return -1
