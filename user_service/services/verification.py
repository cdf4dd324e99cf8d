"""The question other services ask: does this user exist, and may they act?"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from servicekit.cache import Cache
from user_service.domain import UserStanding
from user_service.services.cached_user import refresh_cached_user
from user_service.services.ports import UserStandings


async def verify_user(
    standings: UserStandings,
    cache: Cache,
    *,
    user_id: uuid.UUID,
    reply: Callable[[UserStanding | None], Awaitable[None]] | None = None,
) -> UserStanding | None:
    """The user's standing, None for an unknown user. The answer also refreshes
    ``user:{user_id}``, so the asker's next question is a cache hit; with ``reply``, the
    answer is sent first and the asker does not wait for that write."""
    standing = await standings.get(user_id)
    if reply is not None:
        await reply(standing)
    if standing is not None:
        await refresh_cached_user(cache, standing)
    return standing
