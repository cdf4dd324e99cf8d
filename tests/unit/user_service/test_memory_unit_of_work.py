"""The in-memory unit of work keeps the SQL one's rules, so that use cases tested on it
behave as they do on a database."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from servicekit.cache import InMemoryCache
from tests.unit.user_service.conftest import CountingHasher, registered
from user_service.adapters.memory import InMemoryUserDatabase
from user_service.errors import ConcurrentUpdate, EmailAlreadyRegistered


async def test_nothing_is_kept_unless_committed(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    async with database() as uow:
        saved = await uow.users.save(dataclasses.replace(user, full_name="Uncommitted"))
        assert await uow.users.get(user.id) == saved  # a transaction sees its own writes
        assert database.users[user.id] == user
    assert database.users[user.id] == user


async def test_a_save_on_an_old_version_is_a_conflict(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    async with database() as first, database() as second:
        one = await first.users.get(user.id)
        two = await second.users.get(user.id)
        assert one is not None
        assert two is not None
        await first.users.save(dataclasses.replace(one, full_name="First"))
        await first.commit()
        with pytest.raises(ConcurrentUpdate):
            await second.users.save(dataclasses.replace(two, full_name="Second"))
    assert database.users[user.id].full_name == "First"
    assert database.users[user.id].version == 2


async def test_of_two_transactions_that_saved_the_same_version_only_the_first_commits(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    async with database() as first, database() as second:
        await first.users.save(dataclasses.replace(user, full_name="First"))
        await second.users.save(dataclasses.replace(user, full_name="Second"))
        await first.commit()
        with pytest.raises(ConcurrentUpdate):
            await second.commit()
    assert database.users[user.id].full_name == "First"


async def test_an_email_is_unique_within_and_across_transactions(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    twin = dataclasses.replace(user, id=uuid.uuid4())
    async with database() as uow:
        with pytest.raises(EmailAlreadyRegistered):
            await uow.users.add(twin)
    other = dataclasses.replace(twin, email="twin@example.com")
    async with database() as first, database() as second:
        await first.users.add(other)
        await second.users.add(dataclasses.replace(other, id=uuid.uuid4()))
        await first.commit()
        with pytest.raises(EmailAlreadyRegistered):
            await second.commit()
    assert {u.email for u in database.users.values()} == {user.email, "twin@example.com"}
