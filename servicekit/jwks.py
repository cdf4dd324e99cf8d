"""A JWKS client: public keys fetched over HTTP, cached, refetched on an unknown ``kid`` and
on the schedule the issuer gives in ``Cache-Control: max-age``.

Refetches on an unknown ``kid`` are single-flight and spaced by a cooldown, so a flood of
tokens with random ``kid`` values costs at most one fetch per cooldown. The scheduled
refetch runs in the background (``start``/``close``), ahead of ``max-age``: a key the issuer
withdrew is gone from here before ``max-age`` has passed, and no request waits for a fetch.
If the issuer cannot be reached, the keys held are kept (refusing every token would turn
an issuer outage into an outage of this service) and the fetch is retried soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from servicekit.errors import ServiceUnavailable
from servicekit.tokens import ALLOWED_ALGORITHMS

log = logging.getLogger(__name__)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
# The scheduled fetch runs when this share of max-age has passed, so that it is done before
# the keys it replaces go stale.
REFRESH_AHEAD = 0.8


def max_age_of(cache_control: str | None) -> int | None:
    """``max-age`` of a Cache-Control header, or None (absent, malformed, or ``no-store``)."""
    if not cache_control or "no-store" in cache_control.lower():
        return None
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


class JwksKeySource:
    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        cooldown: float = 30.0,
        retry_after_failure: float = 1.0,
        default_max_age: float = 300.0,
        min_max_age: float = 1.0,
        max_max_age: float = 86_400.0,
    ) -> None:
        self._http = http
        self._url = url
        self._cooldown = cooldown
        self._retry_after_failure = retry_after_failure
        self._default_max_age = default_max_age
        self._min_max_age = min_max_age
        self._max_max_age = max_max_age
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._next_fetch_at = float("-inf")
        self._refresh_at = float("inf")  # the scheduled fetch, once a fetch succeeded
        self._last_fetch_failed = False
        self._lock = asyncio.Lock()
        self._scheduled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.generation = 0

    async def get_key(self, kid: str) -> EllipticCurvePublicKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid not in self._keys and time.monotonic() >= self._next_fetch_at:
                await self.refresh()
        key = self._keys.get(kid)
        if key is None and self._last_fetch_failed:
            # We cannot tell a forged kid from a new key while the issuer is unreachable.
            raise ServiceUnavailable("The token signing keys cannot be fetched; retry later.")
        return key

    async def refresh(self) -> bool:
        try:
            response = await self._http.get(self._url)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            # Keep the keys we have; try again soon rather than after the full cooldown.
            log.warning("could not fetch JWKS from %s: %r", self._url, exc)
            self._last_fetch_failed = True
            now = time.monotonic()
            self._next_fetch_at = now + self._retry_after_failure
            if self._refresh_at <= now:
                self._refresh_at = now + self._retry_after_failure
            return False
        if not set(self._keys) <= set(keys) or any(
            self._keys[kid].public_numbers() != keys[kid].public_numbers() for kid in self._keys
        ):
            self.generation += 1  # a key was withdrawn: remembered tokens are checked again
        self._keys = keys
        self._last_fetch_failed = False
        now = time.monotonic()
        self._next_fetch_at = now + self._cooldown
        self._refresh_at = now + REFRESH_AHEAD * self._max_age(response)
        self._scheduled.set()
        return True

    def _max_age(self, response: httpx.Response) -> float:
        given = max_age_of(response.headers.get("cache-control"))
        age = self._default_max_age if given is None else float(given)
        return min(max(age, self._min_max_age), self._max_max_age)

    def start(self) -> None:
        """Refetch on the issuer's schedule, in the background, until ``close``."""
        if self._task is None:
            self._task = asyncio.create_task(self._refresh_on_schedule(), name="jwks-refresh")

    @contextlib.asynccontextmanager
    async def refreshing(self) -> AsyncIterator[None]:
        """``start`` and ``close`` around a block: the lifespan of a service."""
        self.start()
        try:
            yield
        finally:
            await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh_on_schedule(self) -> None:
        await self._scheduled.wait()  # the first fetch is made by the first token
        while True:
            delay = self._refresh_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # an unknown kid may have fetched meanwhile and moved the schedule
            async with self._lock:
                if time.monotonic() >= self._refresh_at:
                    await self.refresh()


def parse_jwks(document: Any) -> dict[str, EllipticCurvePublicKey]:
    keys: dict[str, EllipticCurvePublicKey] = {}
    for entry in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "EC" or "d" in entry:
            continue
        if entry.get("alg", "ES256") not in ALLOWED_ALGORITHMS or not entry.get("kid"):
            continue
        try:
            key = jwt.PyJWK.from_dict(entry, algorithm="ES256").key
        except jwt.PyJWTError:
            continue
        if isinstance(key, EllipticCurvePublicKey):
            keys[str(entry["kid"])] = key
    return keys
