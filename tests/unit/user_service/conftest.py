"""The User Service's use cases over its in-memory twins: no network, no database file.

argon2 runs for real, with its smallest parameters, so that a hash is a hash and a login
costs a millisecond."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from contracts import CachedUser, user_cache_key
from servicekit.cache import InMemoryCache
from servicekit.errors import DependencyUnavailable
from servicekit.tokens import StaticKeySource, TokenVerifier
from user_service.adapters.memory import InMemoryUserDatabase
from user_service.core.auth import PasswordHasher, SigningKey, TokenIssuer, thumbprint
from user_service.domain import User
from user_service.services.registration import register_user

PASSWORD = "correct horse battery staple"
MIN_LENGTH = 15
ISSUER, AUDIENCE = "user-service-test", "orders-test"


class CountingHasher(PasswordHasher):
    """The real hasher, counting the dummy hashes spent on unknown emails."""

    def __init__(self, *, time_cost: int = 1) -> None:
        super().__init__(memory_kib=8, time_cost=time_cost, max_concurrency=1)
        self.burns = 0

    async def burn(self, password: str) -> None:
        self.burns += 1
        await super().burn(password)


class BrokenCache(InMemoryCache):
    """A cache whose writes fail as the Redis adapter's do when Redis is down."""

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        raise DependencyUnavailable("redis at 127.0.0.1:6379 did not answer")

    async def set_if_newer(self, key: str, value: bytes, version: int, ttl_seconds: int) -> bool:
        raise DependencyUnavailable("redis at 127.0.0.1:6379 did not answer")


@pytest.fixture(scope="session")
def hasher() -> Iterator[CountingHasher]:
    made = CountingHasher()
    yield made
    made.close()


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    key = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid=thumbprint(key.public_key()), private_key=key)


@pytest.fixture
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=900)


@pytest.fixture
def token_verifier(signing_key: SigningKey) -> TokenVerifier:
    keys = StaticKeySource({signing_key.kid: signing_key.public_key})
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def database() -> InMemoryUserDatabase:
    return InMemoryUserDatabase()


@pytest.fixture
def cache() -> InMemoryCache:
    return InMemoryCache()


async def registered(
    database: InMemoryUserDatabase,
    cache: InMemoryCache,
    hasher: PasswordHasher,
    *,
    email: str | None = None,
    password: str = PASSWORD,
) -> User:
    return await register_user(
        database(),
        cache,
        hasher,
        email=email or f"{uuid.uuid4().hex}@example.com",
        password=password,
        full_name="Ada Lovelace",
        password_min_length=MIN_LENGTH,
    )


async def cached(cache: InMemoryCache, user_id: uuid.UUID) -> CachedUser | None:
    raw = await cache.get(user_cache_key(user_id))
    return None if raw is None else CachedUser.model_validate_json(raw)
