"""``verify_user``: the standing of a user for other services, answered before the cache write."""

from __future__ import annotations

import uuid

from servicekit.cache import InMemoryCache
from tests.unit.user_service.conftest import CountingHasher, cached, registered
from user_service.adapters.memory import InMemoryUserDatabase, InMemoryUserStandings
from user_service.domain import UserStanding
from user_service.services.deactivation import deactivate_user
from user_service.services.verification import verify_user


async def test_an_unknown_user_has_no_standing_and_nothing_is_cached(
    database: InMemoryUserDatabase, cache: InMemoryCache
) -> None:
    user_id = uuid.uuid4()
    assert await verify_user(InMemoryUserStandings(database), cache, user_id=user_id) is None
    assert await cached(cache, user_id) is None


async def test_an_active_user_stands_and_the_answer_is_cached(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    await cache.delete(f"user:{user.id}")
    standing = await verify_user(InMemoryUserStandings(database), cache, user_id=user.id)
    assert standing == UserStanding(user.id, user.email, True, 1)
    entry = await cached(cache, user.id)
    assert entry is not None
    assert (entry.id, entry.email, entry.active, entry.version) == (user.id, user.email, True, 1)


async def test_an_inactive_user_stands_inactive(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    await deactivate_user(database(), cache, user_id=user.id)
    standing = await verify_user(InMemoryUserStandings(database), cache, user_id=user.id)
    assert standing is not None
    assert not standing.is_active
    assert standing.version == 2


async def test_the_reply_goes_out_before_the_cache_is_written(
    database: InMemoryUserDatabase, cache: InMemoryCache, hasher: CountingHasher
) -> None:
    user = await registered(database, cache, hasher)
    await cache.delete(f"user:{user.id}")
    seen_at_reply: list[object] = []

    async def reply(standing: UserStanding | None) -> None:
        seen_at_reply.append(standing)
        seen_at_reply.append(await cached(cache, user.id))

    await verify_user(InMemoryUserStandings(database), cache, user_id=user.id, reply=reply)
    assert seen_at_reply == [UserStanding(user.id, user.email, True, 1), None]
    assert await cached(cache, user.id) is not None
