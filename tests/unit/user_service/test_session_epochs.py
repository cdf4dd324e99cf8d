"""A password change and a deactivation end every session: the user's session epoch goes up,
the cache must say so before the commit, and a token of an older epoch is refused here."""

from __future__ import annotations

import uuid

import pytest

from servicekit.cache import InMemoryCache
from servicekit.errors import ServiceUnavailable
from tests.unit.user_service.conftest import (
    MIN_LENGTH,
    PASSWORD,
    BrokenCache,
    CountingHasher,
    cached,
    registered,
)
from user_service.adapters.memory import InMemoryUserDatabase, InMemoryUserProfiles
from user_service.errors import SessionEnded
from user_service.services import deactivation, profile

NEW_PASSWORD = "another correct horse battery staple"


async def change_password(
    database: InMemoryUserDatabase,
    cache: InMemoryCache,
    hasher: CountingHasher,
    user_id: uuid.UUID,
) -> None:
    await profile.update_user(
        database(),
        cache,
        hasher,
        user_id=user_id,
        full_name=None,
        password=NEW_PASSWORD,
        current_password=PASSWORD,
        password_min_length=MIN_LENGTH,
        session_epoch=0,
    )


async def test_a_password_change_raises_the_epoch_everywhere(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    assert user.session_epoch == 0
    await change_password(database, cache, hasher, user.id)
    assert database.users[user.id].session_epoch == 1
    entry = await cached(cache, user.id)
    assert entry is not None
    assert entry.session_epoch == 1
    with pytest.raises(SessionEnded):
        await profile.get_active_user(database(), user_id=user.id, session_epoch=0)
    assert (
        await profile.get_active_user(database(), user_id=user.id, session_epoch=1)
    ).id == user.id
    profiles = InMemoryUserProfiles(database)
    with pytest.raises(SessionEnded):
        await profile.read_profile(profiles, user_id=user.id, session_epoch=0)
    assert (await profile.read_profile(profiles, user_id=user.id, session_epoch=1)).id == user.id
    # A new name is no new session.
    await profile.update_user(
        database(),
        cache,
        hasher,
        user_id=user.id,
        full_name="Ada King",
        password=None,
        current_password=None,
        password_min_length=MIN_LENGTH,
        session_epoch=1,
    )
    assert database.users[user.id].session_epoch == 1


async def test_a_password_change_the_cache_cannot_show_changes_nothing(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    with pytest.raises(ServiceUnavailable):
        await change_password(database, BrokenCache(), hasher, user.id)
    assert database.users[user.id] == user


async def test_a_deactivation_raises_the_epoch_and_an_ended_session_cannot_deactivate(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    await change_password(database, cache, hasher, user.id)
    with pytest.raises(SessionEnded):
        await deactivation.deactivate_user(database(), cache, user_id=user.id, session_epoch=0)
    assert database.users[user.id].is_active
    await deactivation.deactivate_user(database(), cache, user_id=user.id, session_epoch=1)
    assert database.users[user.id].session_epoch == 2
    entry = await cached(cache, user.id)
    assert entry is not None
    assert (entry.active, entry.session_epoch) == (False, 2)
