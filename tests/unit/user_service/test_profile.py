"""Reading and changing one's own account: name, password, and a change that raced another."""

from __future__ import annotations

import dataclasses

import pytest

from servicekit.cache import InMemoryCache
from tests.unit.user_service.conftest import (
    MIN_LENGTH,
    PASSWORD,
    CountingHasher,
    cached,
    registered,
)
from user_service.adapters.memory import InMemoryUserDatabase, InMemoryUserProfiles
from user_service.errors import (
    AccountUnavailable,
    ConcurrentUpdate,
    PasswordTooShort,
    WrongCurrentPassword,
)
from user_service.services.deactivation import deactivate_user
from user_service.services.profile import get_active_user, read_profile, update_user

NEW_PASSWORD = "a brand new passphrase of mine"


async def test_the_full_name_changes_with_a_new_version_and_cache_entry(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    changed = await update_user(
        database(),
        cache,
        hasher,
        user_id=user.id,
        full_name="Augusta Ada King",
        password=None,
        current_password=None,
        password_min_length=MIN_LENGTH,
    )
    assert changed.full_name == "Augusta Ada King"
    assert changed.version == user.version + 1
    assert changed.password_hash == user.password_hash
    assert database.users[user.id] == changed
    assert await get_active_user(database(), user_id=user.id) == changed
    entry = await cached(cache, user.id)
    assert entry is not None
    assert entry.version == changed.version


async def test_the_password_changes_only_with_the_current_one(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)

    async def change(current: str | None, new: str = NEW_PASSWORD) -> None:
        await update_user(
            database(),
            cache,
            hasher,
            user_id=user.id,
            full_name=None,
            password=new,
            current_password=current,
            password_min_length=MIN_LENGTH,
        )

    for wrong in ("not my password at all", None):
        with pytest.raises(WrongCurrentPassword):
            await change(wrong)
    with pytest.raises(PasswordTooShort):
        await change(PASSWORD, new="too short")
    assert database.users[user.id] == user  # nothing changed
    await change(PASSWORD)
    stored = database.users[user.id]
    assert stored.version == user.version + 1
    assert (await hasher.verify(NEW_PASSWORD, stored.password_hash))[0]
    assert not (await hasher.verify(PASSWORD, stored.password_hash))[0]


async def test_a_change_made_meanwhile_turns_the_update_into_a_conflict(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    """The password is hashed between the read and the write; another change landing then
    makes this one fail whole (409), not overwrite it."""

    class RacingHasher(CountingHasher):
        async def hash(self, password: str) -> str:
            async with database() as uow:
                seen = await uow.users.get(user.id)
                assert seen is not None
                await uow.users.save(dataclasses.replace(seen, full_name="Changed Meanwhile"))
                await uow.commit()
            return await super().hash(password)

    racing = RacingHasher()
    try:
        user = await registered(database, cache, hasher)
        with pytest.raises(ConcurrentUpdate):
            await update_user(
                database(),
                cache,
                racing,
                user_id=user.id,
                full_name="Mine",
                password=NEW_PASSWORD,
                current_password=PASSWORD,
                password_min_length=MIN_LENGTH,
            )
    finally:
        racing.close()
    stored = database.users[user.id]
    assert stored.full_name == "Changed Meanwhile"
    assert stored.password_hash == user.password_hash
    assert stored.version == user.version + 1


async def test_an_inactive_account_can_neither_be_read_nor_changed(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    await deactivate_user(database(), cache, user_id=user.id)
    with pytest.raises(AccountUnavailable):
        await get_active_user(database(), user_id=user.id)
    with pytest.raises(AccountUnavailable):
        await read_profile(InMemoryUserProfiles(database), user_id=user.id)
    with pytest.raises(AccountUnavailable):
        await update_user(
            database(),
            cache,
            hasher,
            user_id=user.id,
            full_name="Back",
            password=None,
            current_password=None,
            password_min_length=MIN_LENGTH,
        )
