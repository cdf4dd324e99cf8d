"""Registering an account, and the password policy every new password meets."""

from __future__ import annotations

import uuid

from servicekit.cache import Cache
from servicekit.clock import utc_now
from user_service.core.auth import PasswordHasher, normalize_password
from user_service.core.emails import normalize_email
from user_service.domain import User
from user_service.errors import PasswordTooShort
from user_service.services.cached_user import refresh_cached_user
from user_service.services.ports import UserUnitOfWork


def check_password_policy(password: str, *, min_length: int) -> None:
    # Both as typed (what the OpenAPI document's minLength counts) and as normalized.
    if min(len(password), len(normalize_password(password))) < min_length:
        raise PasswordTooShort(f"The password must have at least {min_length} characters.")


async def register_user(
    uow: UserUnitOfWork,
    cache: Cache,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    full_name: str,
    password_min_length: int,
) -> User:
    check_password_policy(password, min_length=password_min_length)
    password_hash = await hasher.hash(password)
    now = utc_now()
    user = User(
        id=uuid.uuid4(),
        email=normalize_email(email),
        full_name=full_name,
        password_hash=password_hash,
        is_active=True,
        created_at=now,
        updated_at=now,
        version=1,
    )
    async with uow:
        await uow.users.add(user)
        await uow.commit()
    await refresh_cached_user(cache, user.standing)
    return user
