"""The user's entry in the shared cache, ``user:{user_id}``: written on every change, on
login and on verification, so that other services rarely have to ask."""

from __future__ import annotations

import logging
import uuid

from contracts import USER_CACHE_TTL_SECONDS, CachedUser, user_cache_key
from servicekit.cache import Cache
from servicekit.errors import DependencyUnavailable
from user_service.domain import UserStanding

log = logging.getLogger(__name__)


def cached_entry(standing: UserStanding) -> bytes:
    return (
        CachedUser(
            id=standing.id,
            email=standing.email,
            active=standing.is_active,
            version=standing.version,
            session_epoch=standing.session_epoch,
        )
        .model_dump_json()
        .encode()
    )


async def write_cached_user(cache: Cache, standing: UserStanding) -> None:
    """Unless the cache holds a newer version. Raises ``DependencyUnavailable``."""
    await cache.set_if_newer(
        user_cache_key(standing.id),
        cached_entry(standing),
        standing.version,
        USER_CACHE_TTL_SECONDS,
    )


async def overwrite_cached_user(cache: Cache, standing: UserStanding) -> None:
    """Whatever the cache holds, even a higher version (a database restored from a backup, a
    forged entry): a deactivation must leave it saying what the database says. Raises
    ``DependencyUnavailable``."""
    await cache.set(user_cache_key(standing.id), cached_entry(standing), USER_CACHE_TTL_SECONDS)


async def refresh_cached_user(cache: Cache, standing: UserStanding) -> None:
    """Best effort: a missing entry only costs the reader a round trip."""
    try:
        await write_cached_user(cache, standing)
    except DependencyUnavailable as exc:
        log.warning("could not cache user %s: %r", standing.id, exc)


async def forget_cached_user(cache: Cache, user_id: uuid.UUID) -> None:
    try:
        await cache.delete(user_cache_key(user_id))
    except DependencyUnavailable as exc:
        log.error("could not drop cached user %s after a failed commit: %r", user_id, exc)
