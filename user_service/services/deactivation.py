"""Deactivating an account: not reported done until the cache says so, or an order could slip
through for as long as the cached entry lives."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from servicekit.cache import Cache
from servicekit.clock import utc_now
from user_service.errors import AccountUnavailable, SessionEnded
from user_service.services.cached_user import commit_after_cache
from user_service.services.ports import UserUnitOfWork

log = logging.getLogger(__name__)


async def deactivate_user(
    uow: UserUnitOfWork, cache: Cache, *, user_id: uuid.UUID, session_epoch: int | None = None
) -> None:
    """The cache is overwritten before the commit, whatever version it held; if that fails,
    nothing changes (503). Every session of the user ends: its epoch goes up. With
    ``session_epoch`` (the caller's token's), a token of an ended session cannot do it."""
    async with uow:
        user = await uow.users.get(user_id)
        if user is None or not user.is_active:
            raise AccountUnavailable()
        if session_epoch is not None and session_epoch < user.session_epoch:
            raise SessionEnded()
        user = await uow.users.save(
            dataclasses.replace(
                user,
                is_active=False,
                session_epoch=user.session_epoch + 1,
                updated_at=utc_now(),
            )
        )
        await commit_after_cache(uow, cache, user, refused="The account could not be deactivated")
