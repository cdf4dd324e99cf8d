"""Business rules for accounts: registration, login, changes, deactivation, verification.

Every function takes its unit of work and ports first, then keyword-only inputs. The cache
under ``user:{user_id}`` is written on every change and on login; a deactivation is not
reported done until the cache says so, or an order could slip through for up to an hour.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.orm.exc import StaleDataError

from contracts import USER_CACHE_TTL_SECONDS, CachedUser, user_cache_key
from servicekit.cache import Cache
from servicekit.clock import utc_now
from servicekit.errors import DependencyUnavailable, ServiceUnavailable
from servicekit.ratelimit import RateLimiter
from user_service.core.auth import PasswordHasher, TokenIssuer, normalize_password
from user_service.core.database import UserUnitOfWork
from user_service.core.emails import InvalidEmail, email_key, normalize_email
from user_service.errors import (
    AccountUnavailable,
    ConcurrentUpdate,
    InvalidCredentials,
    PasswordTooShort,
    SessionEnded,
    TooManyLoginAttempts,
    WrongCurrentPassword,
)
from user_service.models import User, UserState
from user_service.repositories.user_repository import UserStates

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class UserStatus:
    user_id: uuid.UUID
    exists: bool
    active: bool
    session_epoch: int = 0


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
        session_epoch=0,
    )
    async with uow:
        await uow.users.add(user)
        await uow.commit()
    await refresh_cached_user(cache, user)
    return user


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
    await refresh_cached_user(cache, user)
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
    account_key = account_limit_key(email)
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


def account_limit_key(email: str) -> str:
    """The failed-login counter of an account, named by a digest of the normalized email."""
    return "login:account:" + email_key(email)


async def _store_rehash(uow: UserUnitOfWork, seen: User, new_hash: str) -> User:
    async with uow:
        user = await uow.users.get(seen.id)
        if user is None or user.version != seen.version:
            return seen  # changed meanwhile; the next login rehashes
        user.password_hash = new_hash
        user.updated_at = utc_now()
        try:
            await uow.commit()
        except StaleDataError:
            return seen
    return user


async def get_active_user(
    uow: UserUnitOfWork, *, user_id: uuid.UUID, session_epoch: int | None = None
) -> User:
    """The caller's account; with ``session_epoch`` (the access token's), a token of an
    ended session is refused as an account that is gone would be."""
    async with uow:
        user = await uow.users.get(user_id)
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
    """argon2 runs outside the transaction; the row's version makes sure nothing changed
    between the read and the write (else 409). A new password ends every session: the
    user's session epoch goes up, and, as for a deactivation, the cache must say so before
    the commit, or the order service would take the old tokens for up to an hour."""
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
        if full_name is not None:
            user.full_name = full_name
        user.updated_at = utc_now()
        if new_hash is None:
            try:
                await uow.commit()
            except StaleDataError:
                raise ConcurrentUpdate() from None
        else:
            user.password_hash = new_hash
            user.session_epoch += 1
            await _commit_after_cache(uow, cache, user, refused="The password was not changed")
    if new_hash is None:
        await refresh_cached_user(cache, user)
    return user


async def deactivate_user(
    uow: UserUnitOfWork, cache: Cache, *, user_id: uuid.UUID, session_epoch: int | None = None
) -> None:
    """The cache is overwritten before the commit; if that fails, nothing changes (503)."""
    async with uow:
        user = await uow.users.get(user_id)
        if user is None or not user.is_active:
            raise AccountUnavailable()
        if session_epoch is not None and session_epoch < user.session_epoch:
            raise SessionEnded()
        user.is_active = False
        user.session_epoch += 1
        user.updated_at = utc_now()
        await _commit_after_cache(uow, cache, user, refused="The account was not deactivated")


async def _commit_after_cache(
    uow: UserUnitOfWork, cache: Cache, user: User, *, refused: str
) -> None:
    """A change that must reach every reader of ``user:{id}`` at once: the row is flushed
    (its version goes up), the cache overwritten, then the transaction committed. If the
    cache cannot be written, nothing changes (503)."""
    try:
        await uow.session.flush()
    except StaleDataError:
        raise ConcurrentUpdate() from None
    try:
        await cache.set_if_newer(
            user_cache_key(user.id), _cached(user), user.version, USER_CACHE_TTL_SECONDS
        )
    except DependencyUnavailable as exc:
        log.warning("change of user %s refused: cache write failed (%r)", user.id, exc)
        raise ServiceUnavailable(f"{refused}; retry.") from None
    try:
        await uow.commit()
    except BaseException:
        # The cache already shows the change; drop it so readers go back to the database.
        await _forget_cached_user(cache, user.id)
        raise


async def verify_user(
    states: UserStates,
    cache: Cache,
    *,
    user_id: uuid.UUID,
    reply: Callable[[UserStatus], Awaitable[None]] | None = None,
) -> UserStatus:
    """The question other services ask: does this user exist, and may they act? The answer
    also refreshes ``user:{user_id}``, so the asker's next question is a cache hit; with
    ``reply``, the answer is sent first and the asker does not wait for that write."""
    user = await states.state(user_id)
    status = UserStatus(
        user_id=user_id,
        exists=user is not None,
        active=user is not None and user.is_active,
        session_epoch=user.session_epoch if user is not None else 0,
    )
    if reply is not None:
        await reply(status)
    if user is not None:
        await refresh_cached_user(cache, user)
    return status


async def refresh_cached_user(cache: Cache, user: User | UserState) -> None:
    """Best effort: a missing entry only costs the reader a round trip."""
    try:
        await cache.set_if_newer(
            user_cache_key(user.id), _cached(user), user.version, USER_CACHE_TTL_SECONDS
        )
    except DependencyUnavailable as exc:
        log.warning("could not cache user %s: %r", user.id, exc)


async def _forget_cached_user(cache: Cache, user_id: uuid.UUID) -> None:
    try:
        await cache.delete(user_cache_key(user_id))
    except DependencyUnavailable as exc:
        log.error("could not drop cached user %s after a failed commit: %r", user_id, exc)


def _cached(user: User | UserState) -> bytes:
    return (
        CachedUser(
            id=user.id,
            email=user.email,
            active=user.is_active,
            version=user.version,
            session_epoch=user.session_epoch,
        )
        .model_dump_json()
        .encode()
    )
