"""The caller's own account: reading it, changing the name or the password."""

from __future__ import annotations

import dataclasses
import uuid

from servicekit.cache import Cache
from servicekit.clock import utc_now
from user_service.core.auth import PasswordHasher
from user_service.domain import User
from user_service.errors import AccountUnavailable, ConcurrentUpdate, WrongCurrentPassword
from user_service.services.cached_user import refresh_cached_user
from user_service.services.ports import UserUnitOfWork
from user_service.services.registration import check_password_policy


async def get_active_user(uow: UserUnitOfWork, *, user_id: uuid.UUID) -> User:
    async with uow:
        user = await uow.users.get(user_id)
    if user is None or not user.is_active:
        raise AccountUnavailable()
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
) -> User:
    """argon2 runs outside the transaction; the user's version makes sure nothing changed
    between the read and the write (else 409)."""
    seen = await get_active_user(uow, user_id=user_id)
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
                updated_at=utc_now(),
            )
        )
        await uow.commit()
    await refresh_cached_user(cache, user.standing)
    return user
