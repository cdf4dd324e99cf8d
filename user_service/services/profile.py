"""The caller's own account: reading it, changing the name or the password."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from servicekit.cache import Cache
from servicekit.clock import utc_now
from user_service.core.auth import PasswordHasher
from user_service.domain import User
from user_service.errors import (
    AccountUnavailable,
    ConcurrentUpdate,
    SessionEnded,
    WrongCurrentPassword,
)
from user_service.services.cached_user import (
    commit_after_cache,
    refresh_cached_user,
)
from user_service.services.ports import UserProfiles, UserUnitOfWork
from user_service.services.registration import check_password_policy

log = logging.getLogger(__name__)


async def read_profile(
    profiles: UserProfiles, *, user_id: uuid.UUID, session_epoch: int | None = None
) -> User:
    """The caller's account, as ``GET /users/me`` shows it."""
    return _active(await profiles.get(user_id), session_epoch)


async def get_active_user(
    uow: UserUnitOfWork, *, user_id: uuid.UUID, session_epoch: int | None = None
) -> User:
    """The caller's account, read in ``uow``'s transaction."""
    async with uow:
        user = await uow.users.get(user_id)
    return _active(user, session_epoch)


def _active(user: User | None, session_epoch: int | None) -> User:
    """``user`` if it exists and is active; with ``session_epoch`` (the access token's), a
    token of an ended session is refused as an account that is gone would be."""
    if user is None or not user.is_active:
        raise AccountUnavailable()
    if session_epoch is not None and session_epoch < user.session_epoch:
        raise SessionEnded()
    return user


async def update_user(
    uow: UserUnitOfWork,
    cache: Cache,
    hasher: PasswordHasher,
    *,
    user_id: uuid.UUID,
    full_name: str | None,
    password: str | None,
    current_password: str | None,
    password_min_length: int,
    session_epoch: int | None = None,
) -> User:
    """argon2 runs outside the transaction; the user's version makes sure nothing changed
    between the read and the write (else 409). A new password ends every session: the
    user's session epoch goes up, and, as for a deactivation, the cache must say so before
    the commit, or the order service would take the old tokens for as long as the entry
    lives (else 503, and nothing changes)."""
    seen = await get_active_user(uow, user_id=user_id, session_epoch=session_epoch)
    new_hash = None
    if password is not None:
        check_password_policy(password, min_length=password_min_length)
        matches, _ = await hasher.verify(current_password or "", seen.password_hash)
        if not matches:
            raise WrongCurrentPassword()
        new_hash = await hasher.hash(password)
    async with uow:
        user = await uow.users.get(user_id)
        if user is None or not user.is_active:
            raise AccountUnavailable()
        if user.version != seen.version:
            raise ConcurrentUpdate()
        user = await uow.users.save(
            dataclasses.replace(
                user,
                full_name=user.full_name if full_name is None else full_name,
                password_hash=user.password_hash if new_hash is None else new_hash,
                session_epoch=user.session_epoch + (0 if new_hash is None else 1),
                updated_at=utc_now(),
            )
        )
        if new_hash is None:
            await uow.commit()
        else:
            await commit_after_cache(uow, cache, user, refused="The password was not changed")
    if new_hash is None:
        await refresh_cached_user(cache, user.standing)
    return user
