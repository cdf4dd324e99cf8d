"""The user's entry in the shared cache, ``user:{user_id}``: written on every change, on
login and on verification, so that other services rarely have to ask."""

from __future__ import annotations

import logging
import uuid

from contracts import USER_CACHE_TTL_SECONDS, CachedUser, user_cache_key
from servicekit.cache import Cache
from servicekit.errors import DependencyUnavailable, ServiceUnavailable
from user_service.domain import User, UserStanding
from user_service.services.ports import UserUnitOfWork

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


async def commit_after_cache(
    uow: UserUnitOfWork, cache: Cache, user: User, *, refused: str
) -> None:
    """Commit a change that other services must see at once (a deactivation, a new session
    epoch): the entry is overwritten first, whatever version it held; if that fails, nothing
    is committed (503, ``refused``); if the commit fails, the entry is dropped so readers go
    back to the database."""
    try:
        await overwrite_cached_user(cache, user.standing)
    except DependencyUnavailable as exc:
        log.warning("%s for %s: cache write failed (%r)", refused, user.id, exc)
        raise ServiceUnavailable(f"{refused}; retry.") from None
    try:
        await uow.commit()
    except BaseException:
        await forget_cached_user(cache, user.id)
        raise
