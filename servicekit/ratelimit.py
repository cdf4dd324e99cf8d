"""The rate-limiter port: fixed-window counters, with its in-process twin (the Redis adapter:
``servicekit.redis``).

A window starts at a key's first hit and lasts ``window_seconds``; ``hit`` counts one and
says whether the count is still within the limit, ``peek`` only looks. Every answer carries
the seconds until the window ends, for a ``Retry-After``.

The Redis adapter fails open: if Redis cannot be reached (every call is bounded by the
client's timeouts), the request is allowed and a warning is logged. Rate limiting is a
brake on abuse, not a security boundary of its own; refusing every login while Redis is
down would turn a cache outage into a full outage of authentication.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    count: int
    retry_after: int


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        """Count one event under ``key``; allowed while the count is at most ``limit``."""
        ...

    async def peek(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        """Without counting: is one more event allowed?"""
        ...


class InMemoryRateLimiter:
    """Counters in a dict: the single-process deployment's limiter."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, sweep_above: int = 10_000
    ) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._now = clock
        self._sweep_above = sweep_above

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        now = self._now()
        ends_at, count = self._current(key, now)
        if count == 0:
            ends_at = now + window_seconds
            if len(self._windows) >= self._sweep_above:
                self._sweep(now)
        count += 1
        self._windows[key] = (ends_at, count)
        return RateDecision(count <= limit, count, _seconds_left(ends_at, now))

    async def peek(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        now = self._now()
        ends_at, count = self._current(key, now)
        left = _seconds_left(ends_at, now) if count else window_seconds
        return RateDecision(count < limit, count, left)

    def _current(self, key: str, now: float) -> tuple[float, int]:
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            return now, 0
        return window

    def _sweep(self, now: float) -> None:
        """Forget ended windows, so that many distinct keys cannot grow memory for ever."""
        for key in [k for k, (ends_at, _) in self._windows.items() if ends_at <= now]:
            del self._windows[key]


def _seconds_left(ends_at: float, now: float) -> int:
    return max(1, math.ceil(ends_at - now))
