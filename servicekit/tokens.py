"""Access-token verification (RFC 8725, RFC 9068): ES256 only, public keys only.

Only the user service mints tokens; every service verifies them locally with this module.
Header members that point elsewhere for a key (``jku``, ``x5u``, ``jwk``) are never read.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

ALLOWED_ALGORITHMS = ("ES256",)
ACCESS_TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti")
# The user's session epoch when the token was issued: a password change or a deactivation
# raises the user's epoch, and every token carrying a lower one is refused. A token without
# the claim (issued before sessions had epochs) is of epoch 0.
SESSION_EPOCH_CLAIM = "session_epoch"
MAX_TOKEN_LENGTH = 4096


class TokenError(Exception):
    """The token must not be accepted; the message is for logs, not for clients."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    token_id: str
    issued_at: int
    expires_at: int
    session_epoch: int = 0


class KeySource(Protocol):
    """Public keys by ``kid``. ``generation`` changes whenever the set of keys may have lost
    a member, so that tokens remembered under an older set are checked again."""

    @property
    def generation(self) -> int: ...

    async def get_key(self, kid: str) -> EllipticCurvePublicKey | None: ...


class StaticKeySource:
    """Keys known in this process (the single process, and the user service itself)."""

    generation = 0

    def __init__(self, keys: dict[str, EllipticCurvePublicKey]) -> None:
        self._keys = dict(keys)

    async def get_key(self, kid: str) -> EllipticCurvePublicKey | None:
        return self._keys.get(kid)


class TokenVerifier:
    """Verifies ES256 access tokens, and remembers the ones it accepted.

    A client sends the same token with every request for its whole life, and an ES256
    check costs far more than the rest of a small request's own work. So the claims of an
    accepted token are kept, keyed by the token's exact text, for at most ``remember_seconds``
    and never past its ``exp``, and only while the key source's ``generation`` is the one
    it was accepted under: a key withdrawn from the key source takes its remembered tokens
    with it. Only accepted tokens are kept: a forged or unknown one pays the full check
    every time.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: int = 5,
        remember_seconds: float = 60.0,
        remember_max: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._remember_seconds = remember_seconds
        self._remember_max = remember_max
        self._now = clock
        self._accepted: OrderedDict[str, tuple[float, int, AccessClaims]] = OrderedDict()

    async def verify(self, token: str) -> AccessClaims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("token too long")
        remembered = self._accepted.get(token)
        if remembered is not None:
            valid_until, generation, claims = remembered
            if self._now() < valid_until and generation == self._keys.generation:
                return claims
            del self._accepted[token]
        generation = self._keys.generation
        claims = await self._verify_signed(token)
        if self._remember_seconds > 0:
            valid_until = min(self._now() + self._remember_seconds, float(claims.expires_at))
            self._accepted[token] = (valid_until, generation, claims)
            if len(self._accepted) > self._remember_max:
                self._accepted.popitem(last=False)
        return claims

    async def _verify_signed(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"unreadable header: {exc}") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise TokenError(f"algorithm not allowed: {header.get('alg')!r}")
        typ = str(header.get("typ", "")).lower()
        if typ not in (ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"):
            raise TokenError(f"not an access token: typ={header.get('typ')!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("no kid")
        key = await self._keys.get_key(kid)
        if key is None:
            raise TokenError(f"unknown kid {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"rejected: {exc}") from None
        sub, jti = claims["sub"], claims["jti"]
        if not isinstance(sub, str) or not isinstance(jti, str):
            raise TokenError("sub and jti must be strings")
        epoch = claims.get(SESSION_EPOCH_CLAIM, 0)
        if type(epoch) is not int or epoch < 0:
            raise TokenError("session_epoch must be a non-negative integer")
        return AccessClaims(
            subject=sub,
            token_id=jti,
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            session_epoch=epoch,
        )
