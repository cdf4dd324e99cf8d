"""Password hashing (argon2id, off the event loop) and access-token signing (ES256).

Only this service holds a private key; everyone else verifies with its published JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import secrets
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from servicekit.tokens import ACCESS_TOKEN_TYPE, SESSION_EPOCH_CLAIM

log = logging.getLogger(__name__)

DEV_KEY_FILE = "jwt-signing-key.pem"


def normalize_password(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks, so the same password typed two ways is the same."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id in a small thread pool: a login storm queues here instead of starving the loop.

    ``burn`` spends the same work on a dummy hash, so an unknown email costs what a wrong
    password costs.
    """

    def __init__(self, *, memory_kib: int, time_cost: int, max_concurrency: int) -> None:
        self._hash = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1),)
        )
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="argon2")
        self._dummy = self._hash.hash(secrets.token_urlsafe(24))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hash.hash, normalize_password(password))

    async def verify(self, password: str, hashed: str) -> tuple[bool, str | None]:
        """Returns (matches, a new hash if the stored one uses weaker parameters)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._hash.verify_and_update, normalize_password(password), hashed
        )

    async def burn(self, password: str) -> None:
        await self.verify(password, self._dummy)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        return {**_public_members(self.public_key), "kid": self.kid, "use": "sig", "alg": "ES256"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_members(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that names the key itself."""
    canonical = json.dumps(_public_members(key), separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def signing_key_from_pem(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("a signing key must be an EC P-256 private key in PEM")
    return SigningKey(kid=thumbprint(key.public_key()), private_key=key)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class KeyRing:
    """The keys this service holds: ``signer`` signs, every key in ``keys`` is published in
    the JWKS and accepted. Rotation adds a key, makes it the signer, then drops the old one."""

    signer: SigningKey
    keys: tuple[SigningKey, ...]


def key_ring_from_pems(pems: str, *, signing_kid: str | None = None) -> KeyRing:
    """Every PEM block of ``pems`` (duplicates once); the signer is ``signing_kid`` or the
    first. A ValueError names the setting at fault."""
    keys: dict[str, SigningKey] = {}
    blocks = [match.group(0) for match in _PEM_BLOCK.finditer(pems.encode())]
    if not blocks:
        raise ValueError("JWT_PRIVATE_KEY(S): no PEM block found")
    for block in blocks:
        try:
            key = signing_key_from_pem(block)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"JWT_PRIVATE_KEY(S): {exc}") from None
        keys.setdefault(key.kid, key)
    if signing_kid is None:
        signer = next(iter(keys.values()))
    elif signing_kid in keys:
        signer = keys[signing_kid]
    else:
        raise ValueError(f"JWT_SIGNING_KID: no configured key has the kid {signing_kid!r}")
    return KeyRing(signer=signer, keys=tuple(keys.values()))


def load_or_create_dev_key(data_dir: Path) -> SigningKey:
    """A development key in the data folder, made on first start. Safe for replicas that
    share the folder: the first writer wins and everyone reads the same file."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
            log.warning("generated a development signing key at %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return signing_key_from_pem(path.read_bytes())


class TokenIssuer:
    def __init__(self, key: SigningKey, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds
        self._headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}

    def issue(self, subject: uuid.UUID, *, client_id: str, session_epoch: int = 0) -> str:
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(subject),
            "client_id": client_id,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            SESSION_EPOCH_CLAIM: session_epoch,
        }
        return jwt.encode(claims, self._key.private_key, algorithm="ES256", headers=self._headers)
