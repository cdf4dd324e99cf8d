"""Registering an account."""

from __future__ import annotations

import pytest

from servicekit.cache import InMemoryCache
from tests.unit.user_service.conftest import (
    MIN_LENGTH,
    PASSWORD,
    CountingHasher,
    cached,
    registered,
)
from user_service.adapters.memory import InMemoryUserDatabase
from user_service.errors import EmailAlreadyRegistered, PasswordTooShort
from user_service.services.registration import register_user


async def test_a_new_account_is_stored_active_at_version_1_and_cached(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    assert database.users[user.id] == user
    assert user.is_active
    assert user.version == 1
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert await hasher.verify(PASSWORD, user.password_hash) == (True, None)
    entry = await cached(cache, user.id)
    assert entry is not None
    assert (entry.email, entry.active, entry.version) == (user.email, True, 1)


async def test_the_email_is_stored_trimmed_and_in_lower_case(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher, email="  Ada.Lovelace@Example.COM ")
    assert user.email == "ada.lovelace@example.com"
    assert database.users[user.id].email == "ada.lovelace@example.com"


async def test_an_email_already_registered_in_another_spelling_is_refused(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    first = await registered(database, cache, hasher, email="grace@example.com")
    with pytest.raises(EmailAlreadyRegistered):
        await registered(database, cache, hasher, email=" GRACE@example.com")
    assert list(database.users.values()) == [first]


async def test_a_password_shorter_than_the_policy_is_refused_before_any_work(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    with pytest.raises(PasswordTooShort, match=f"at least {MIN_LENGTH} characters"):
        await register_user(
            database(),
            cache,
            hasher,
            email="short@example.com",
            password="x" * (MIN_LENGTH - 1),
            full_name="Short",
            password_min_length=MIN_LENGTH,
        )
    assert database.users == {}
    assert database.commits == 0


async def test_a_password_counts_as_normalized_too(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    fractions = "\u00bd" * 15  # NFKC makes each "1/2" (three characters): longer, accepted
    await registered(database, cache, hasher, password=fractions)
    combining = "e\u0301" * 8  # 16 typed, 8 once NFKC composes each pair
    with pytest.raises(PasswordTooShort):
        await registered(database, cache, hasher, password=combining)
