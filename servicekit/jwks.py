"""A JWKS client: public keys fetched over HTTP, cached, refetched on an unknown ``kid``.

Refetches are single-flight and spaced by a cooldown, so a flood of tokens with random
``kid`` values costs at most one fetch per cooldown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from servicekit.errors import ServiceUnavailable
from servicekit.tokens import ALLOWED_ALGORITHMS

log = logging.getLogger(__name__)


class JwksKeySource:
    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        cooldown: float = 30.0,
        retry_after_failure: float = 1.0,
    ) -> None:
        self._http = http
        self._url = url
        self._cooldown = cooldown
        self._retry_after_failure = retry_after_failure
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._next_fetch_at = float("-inf")
        self._last_fetch_failed = False
        self._lock = asyncio.Lock()

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
            self._next_fetch_at = time.monotonic() + self._retry_after_failure
            return False
        self._keys = keys
        self._last_fetch_failed = False
        self._next_fetch_at = time.monotonic() + self._cooldown
        return True


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
