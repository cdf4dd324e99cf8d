"""Deactivation: done only once the cache says so; if the cache cannot say it, nothing changes."""

from __future__ import annotations

import uuid

import pytest

from contracts import CachedUser, user_cache_key
from servicekit.cache import InMemoryCache
from servicekit.errors import ServiceUnavailable
from tests.unit.user_service.conftest import BrokenCache, CountingHasher, cached, registered
from user_service.adapters.memory import InMemoryUserDatabase, InMemoryUserUnitOfWork
from user_service.errors import AccountUnavailable
from user_service.services.deactivation import deactivate_user


async def test_the_account_is_inactive_and_the_cache_says_so_at_a_newer_version(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    await deactivate_user(database(), cache, user_id=user.id)
    stored = database.users[user.id]
    assert not stored.is_active
    assert stored.version == user.version + 1
    entry = await cached(cache, user.id)
    assert entry is not None
    assert (entry.active, entry.version) == (False, stored.version)
    with pytest.raises(AccountUnavailable):
        await deactivate_user(database(), cache, user_id=user.id)


async def test_an_entry_of_a_higher_version_is_overwritten_all_the_same(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    """A cache that says "active" at a version the database never reached (restored from a
    backup, or forged) must not survive a deactivation reported done."""
    user = await registered(database, cache, hasher)
    ahead = CachedUser(id=user.id, email=user.email, active=True, version=user.version + 1_000)
    await cache.set(user_cache_key(user.id), ahead.model_dump_json().encode(), 3600)
    await deactivate_user(database(), cache, user_id=user.id)
    entry = await cached(cache, user.id)
    assert entry is not None
    assert (entry.active, entry.version) == (False, database.users[user.id].version)


async def test_a_failed_cache_write_refuses_the_deactivation_and_changes_nothing(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    broken = BrokenCache()
    commits = database.commits
    with pytest.raises(ServiceUnavailable) as refused:
        await deactivate_user(database(), broken, user_id=user.id)
    assert refused.value.status_code == 503
    assert refused.value.headers["Retry-After"] == "1"
    assert database.users[user.id] == user
    assert database.commits == commits
    entry = await cached(cache, user.id)
    assert entry is not None
    assert entry.active


async def test_a_failed_commit_drops_the_cache_entry_it_had_written(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)

    class FailingCommit(InMemoryUserUnitOfWork):
        async def commit(self) -> None:
            raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        await deactivate_user(FailingCommit(database), cache, user_id=user.id)
    assert database.users[user.id] == user
    assert await cached(cache, user.id) is None  # readers go back to the database


async def test_an_unknown_user_cannot_be_deactivated(
    database: InMemoryUserDatabase, cache: InMemoryCache
) -> None:
    with pytest.raises(AccountUnavailable):
        await deactivate_user(database(), cache, user_id=uuid.uuid4())
