"""Logging in: the password check, its two rate limits, and the token it earns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from servicekit.cache import Cache
from servicekit.clock import utc_now
from servicekit.ratelimit import RateLimiter
from user_service.core.auth import PasswordHasher, TokenIssuer
from user_service.core.emails import InvalidEmail, email_key, normalize_email
from user_service.domain import User
from user_service.errors import ConcurrentUpdate, InvalidCredentials, TooManyLoginAttempts
from user_service.services.cached_user import refresh_cached_user
from user_service.services.ports import UserUnitOfWork


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    user: User


@dataclass(frozen=True, slots=True)
class LoginLimits:
    max_failures_per_account: int
    window_seconds: int
    max_attempts_per_address: int
    address_window_seconds: int


async def authenticate(
    uow: UserUnitOfWork,
    cache: Cache,
    hasher: PasswordHasher,
    issuer: TokenIssuer,
    *,
    email: str,
    password: str,
    client_id: str,
) -> IssuedToken:
    """One failure for an unknown email, a wrong password and an inactive account.

    No transaction is held while argon2 runs."""
    try:
        canonical = normalize_email(email)
    except InvalidEmail:
        canonical = None  # no account can have it: answered as an unknown one
    user = None
    if canonical is not None:
        async with uow:
            user = await uow.users.get_by_email(canonical)
    if user is None:
        await hasher.burn(password)
        raise InvalidCredentials()
    matches, new_hash = await hasher.verify(password, user.password_hash)
    if not matches or not user.is_active:
        raise InvalidCredentials()
    if new_hash is not None:
        user = await _store_rehash(uow, user, new_hash)
    await refresh_cached_user(cache, user.standing)
    token = issuer.issue(user.id, client_id=client_id, session_epoch=user.session_epoch)
    return IssuedToken(access_token=token, expires_in=issuer.ttl_seconds, user=user)


async def log_in(
    uow: UserUnitOfWork,
    cache: Cache,
    hasher: PasswordHasher,
    issuer: TokenIssuer,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    client_id: str,
    client_address: str,
    limits: LoginLimits,
) -> IssuedToken:
    """``authenticate`` behind two brakes, both checked before any argon2 work:

    - per client address, every attempt counts (a high threshold against one noisy source);
    - per account, only failures count, so nobody's failures on another account slow a
      login down, and a correct password cannot unlock an account that is being guessed.

    The account key is a digest of the normalized email, known or not: a 429 reveals nothing
    about which emails have accounts."""
    by_address = await limiter.hit(
        f"login:address:{client_address}",
        limit=limits.max_attempts_per_address,
        window_seconds=limits.address_window_seconds,
    )
    if not by_address.allowed:
        raise TooManyLoginAttempts(retry_after=by_address.retry_after)
    account_key = "login:account:" + email_key(email)
    by_account = await limiter.peek(
        account_key, limit=limits.max_failures_per_account, window_seconds=limits.window_seconds
    )
    if not by_account.allowed:
        raise TooManyLoginAttempts(retry_after=by_account.retry_after)
    try:
        return await authenticate(
            uow, cache, hasher, issuer, email=email, password=password, client_id=client_id
        )
    except InvalidCredentials:
        await limiter.hit(
            account_key, limit=limits.max_failures_per_account, window_seconds=limits.window_seconds
        )
        raise


async def _store_rehash(uow: UserUnitOfWork, seen: User, new_hash: str) -> User:
    """The stored hash made with today's parameters; if the user changed meanwhile, nothing
    is stored and the next login rehashes."""
    try:
        async with uow:
            user = await uow.users.save(
                dataclasses.replace(seen, password_hash=new_hash, updated_at=utc_now())
            )
            await uow.commit()
    except ConcurrentUpdate:
        return seen
    return user
