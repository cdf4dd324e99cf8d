"""Logging in: the password check, its two rate limits, the rehash, the token and the cache."""

from __future__ import annotations

import pytest

from servicekit.cache import InMemoryCache
from servicekit.ratelimit import InMemoryRateLimiter
from servicekit.tokens import TokenVerifier
from tests.unit.user_service.conftest import PASSWORD, CountingHasher, cached, registered
from user_service.adapters.memory import InMemoryUserDatabase
from user_service.core.auth import PasswordHasher, TokenIssuer
from user_service.errors import InvalidCredentials, TooManyLoginAttempts
from user_service.services.deactivation import deactivate_user
from user_service.services.login import IssuedToken, LoginLimits, log_in

LIMITS = LoginLimits(
    max_failures_per_account=3,
    window_seconds=900,
    max_attempts_per_address=10,
    address_window_seconds=60,
)


class Login:
    """``log_in`` with the ports of one test and a fake clock for the limiter."""

    def __init__(
        self,
        database: InMemoryUserDatabase,
        cache: InMemoryCache,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
    ) -> None:
        self.database, self.cache, self.hasher, self.issuer = database, cache, hasher, issuer
        self.now = 0.0
        self.limiter = InMemoryRateLimiter(clock=lambda: self.now)

    async def __call__(
        self, email: str, password: str = PASSWORD, *, address: str = "192.0.2.1"
    ) -> IssuedToken:
        return await log_in(
            self.database(),
            self.cache,
            self.hasher,
            self.issuer,
            self.limiter,
            email=email,
            password=password,
            client_id="test",
            client_address=address,
            limits=LIMITS,
        )


@pytest.fixture
def login(
    database: InMemoryUserDatabase,
    cache: InMemoryCache,
    hasher: CountingHasher,
    issuer: TokenIssuer,
) -> Login:
    return Login(database, cache, hasher, issuer)


async def test_the_right_password_earns_a_token_for_the_user_and_refreshes_the_cache(
    login: Login, token_verifier: TokenVerifier
) -> None:
    user = await registered(login.database, login.cache, login.hasher)
    await login.cache.delete(f"user:{user.id}")
    issued = await login(f"  {user.email.upper()} ")
    assert issued.user == user
    assert issued.expires_in == 900
    claims = await token_verifier.verify(issued.access_token)
    assert claims.subject == str(user.id)
    entry = await cached(login.cache, user.id)
    assert entry is not None
    assert entry.active


async def test_a_wrong_password_is_invalid_credentials(login: Login) -> None:
    user = await registered(login.database, login.cache, login.hasher)
    with pytest.raises(InvalidCredentials):
        await login(user.email, PASSWORD + "!")


async def test_an_unknown_email_spends_a_hash_and_fails_alike(
    login: Login, hasher: CountingHasher
) -> None:
    burns = hasher.burns
    with pytest.raises(InvalidCredentials) as unknown:
        await login("nobody@example.com")
    assert hasher.burns == burns + 1
    user = await registered(login.database, login.cache, login.hasher)
    with pytest.raises(InvalidCredentials) as wrong:
        await login(user.email, "not the password at all")
    assert hasher.burns == burns + 1  # a known email spends its own hash
    assert str(unknown.value) == str(wrong.value)


async def test_an_inactive_account_cannot_log_in_even_with_its_password(login: Login) -> None:
    user = await registered(login.database, login.cache, login.hasher)
    await deactivate_user(login.database(), login.cache, user_id=user.id)
    with pytest.raises(InvalidCredentials):
        await login(user.email)


async def test_failures_on_an_account_lock_it_for_the_window_even_for_the_right_password(
    login: Login,
) -> None:
    user = await registered(login.database, login.cache, login.hasher)
    other = await registered(login.database, login.cache, login.hasher)
    for _ in range(LIMITS.max_failures_per_account):
        with pytest.raises(InvalidCredentials):
            await login(user.email, "a wrong password, again")
    with pytest.raises(TooManyLoginAttempts) as refused:
        await login(user.email)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= LIMITS.window_seconds
    with pytest.raises(TooManyLoginAttempts):
        await login(f" {user.email.upper()}")  # the same account, spelled otherwise
    assert (await login(other.email)).user.id == other.id  # others are not slowed down
    login.now += LIMITS.window_seconds
    assert (await login(user.email)).user.id == user.id


async def test_successes_do_not_count_against_the_account(login: Login) -> None:
    user = await registered(login.database, login.cache, login.hasher)
    for attempt in range(LIMITS.max_failures_per_account + 2):
        await login(user.email, address=f"198.51.100.{attempt}")


async def test_every_attempt_counts_against_the_address(login: Login) -> None:
    user = await registered(login.database, login.cache, login.hasher)
    for _ in range(LIMITS.max_attempts_per_address):
        await login(user.email)
    with pytest.raises(TooManyLoginAttempts) as refused:
        await login(user.email)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= LIMITS.address_window_seconds
    assert (await login(user.email, address="203.0.113.9")).user.id == user.id
    login.now += LIMITS.address_window_seconds
    await login(user.email)


async def test_a_hash_made_with_weaker_parameters_is_replaced_at_login(
    login: Login, database: InMemoryUserDatabase, cache: InMemoryCache
) -> None:
    stronger = CountingHasher(time_cost=2)
    try:
        user = await registered(database, cache, login.hasher)  # made with time_cost 1
        login.hasher = stronger
        issued = await login(user.email)
        stored = database.users[user.id]
        assert await stronger.verify(PASSWORD, stored.password_hash) == (True, None)
    finally:
        stronger.close()
    assert stored.password_hash != user.password_hash
    assert ",t=2," in stored.password_hash
    assert stored.version == user.version + 1
    assert issued.user == stored
    entry = await cached(cache, user.id)
    assert entry is not None
    assert entry.version == stored.version
