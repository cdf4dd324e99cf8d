"""Sessions: what a login opens, a refresh rotates, and logout, reuse or a change of the user
ends (RFC 6749 section 6, RFC 7009, RFC 9700).

A login opens a family: its first refresh token. Every refresh spends the token presented
and adds its successor to the family. Presenting a spent token again is reuse: either the
client or a thief holds a copy, and the server cannot tell which, so the whole family is
revoked. A refresh token is stored only as its SHA-256: it is 256 random bits, so a digest
that leaks cannot be turned back into a token (a slow hash, as for passwords, buys nothing).

The user's session epoch (raised by a password change and a deactivation) is written into
every access token and every refresh token; a refresh token of an older epoch revokes its
family, and an access token of an older epoch is refused wherever it is checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass

from servicekit.cache import Cache
from servicekit.clock import utc_now
from servicekit.housekeeping import purge_in_batches
from servicekit.ratelimit import RateLimiter
from user_service.core.auth import PasswordHasher, TokenIssuer
from user_service.core.emails import email_key
from user_service.domain import User
from user_service.errors import (
    InvalidGrant,
    TooManyLoginAttempts,
)
from user_service.services.cached_user import refresh_cached_user
from user_service.services.login import LoginLimits
from user_service.services.login import log_in as log_in_with_password
from user_service.services.ports import UserUnitOfWork

log = logging.getLogger(__name__)

REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class SessionTokens:
    access_token: str
    expires_in: int
    refresh_token: str


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


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
    refresh_ttl: dt.timedelta,
) -> SessionTokens:
    """The password grant: the login's access token, and the first refresh token of a new
    family."""
    issued = await log_in_with_password(
        uow,
        cache,
        hasher,
        issuer,
        limiter,
        email=email,
        password=password,
        client_id=client_id,
        client_address=client_address,
        limits=limits,
    )
    refresh_token = await open_family(
        uow, user=issued.user, client_id=client_id, refresh_ttl=refresh_ttl
    )
    return SessionTokens(issued.access_token, issued.expires_in, refresh_token)


async def open_family(
    uow: UserUnitOfWork, *, user: User, client_id: str, refresh_ttl: dt.timedelta
) -> str:
    """The first refresh token of a new session of ``user``."""
    refresh_token = new_refresh_token()
    async with uow:
        await _add_refresh_token(
            uow,
            refresh_token,
            family_id=uuid.uuid4(),
            user=user,
            client_id=client_id,
            ttl=refresh_ttl,
        )
        await uow.commit()
    return refresh_token


async def refresh(
    uow: UserUnitOfWork,
    cache: Cache,
    issuer: TokenIssuer,
    limiter: RateLimiter,
    *,
    refresh_token: str,
    client_id: str | None,
    client_address: str,
    limits: LoginLimits,
    refresh_ttl: dt.timedelta,
) -> SessionTokens:
    """The refresh grant, behind the login's brakes: every attempt counts against the
    client address's budget, as a login does; a failure with a token this service issued
    (spent, revoked, expired, of an ended session) counts as a failed login of its account.
    A failure with an unknown token has no account to count on: the address budget bounds
    those. A live token is never refused for its account's failures: it is not a guess."""
    by_address = await limiter.hit(
        f"login:address:{client_address}",
        limit=limits.max_attempts_per_address,
        window_seconds=limits.address_window_seconds,
    )
    if not by_address.allowed:
        raise TooManyLoginAttempts(retry_after=by_address.retry_after)
    try:
        tokens, user = await _rotate(
            uow, issuer, refresh_token=refresh_token, client_id=client_id, refresh_ttl=refresh_ttl
        )
    except InvalidGrant as refused:
        if refused.user_id is not None:
            await _count_failure(uow, limiter, user_id=refused.user_id, limits=limits)
        raise
    await refresh_cached_user(cache, user.standing)
    return tokens


async def _count_failure(
    uow: UserUnitOfWork,
    limiter: RateLimiter,
    *,
    user_id: uuid.UUID,
    limits: LoginLimits,
) -> None:
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        return
    await limiter.hit(
        "login:account:" + email_key(user.email),
        limit=limits.max_failures_per_account,
        window_seconds=limits.window_seconds,
    )


async def _rotate(
    uow: UserUnitOfWork,
    issuer: TokenIssuer,
    *,
    refresh_token: str,
    client_id: str | None,
    refresh_ttl: dt.timedelta,
) -> tuple[SessionTokens, User]:
    token_hash = refresh_token_hash(refresh_token)
    now = utc_now()
    async with uow:
        spent = await uow.refresh_tokens.spend(token_hash, now=now)
        if spent is None:
            known = await uow.refresh_tokens.get_by_hash(token_hash)
            if known is not None and known.spent_at is not None and known.revoked_at is None:
                revoked = await uow.refresh_tokens.revoke_family(known.family_id, now=now)
                await uow.commit()
                log.warning(
                    "refresh token reuse: family %s of user %s revoked (%d live tokens)",
                    known.family_id,
                    known.user_id,
                    revoked,
                )
            raise InvalidGrant(user_id=known.user_id if known is not None else None)
        if client_id is not None and client_id != spent.client_id:
            # RFC 6749 section 6: a refresh token is bound to the client it was issued to.
            # Rolled back: the token stays live for its own client.
            raise InvalidGrant(user_id=spent.user_id)
        user = await uow.users.get(spent.user_id)
        if user is None or not user.is_active or user.session_epoch != spent.session_epoch:
            await uow.refresh_tokens.revoke_family(spent.family_id, now=now)
            await uow.commit()
            raise InvalidGrant(user_id=spent.user_id)
        successor = new_refresh_token()
        await _add_refresh_token(
            uow,
            successor,
            family_id=spent.family_id,
            user=user,
            client_id=spent.client_id,
            ttl=refresh_ttl,
        )
        await uow.commit()
    access_token = issuer.issue(
        user.id, client_id=spent.client_id, session_epoch=user.session_epoch
    )
    return SessionTokens(access_token, issuer.ttl_seconds, successor), user


async def revoke(uow: UserUnitOfWork, *, token: str) -> None:
    """RFC 7009: revoke the family of this refresh token. An unknown token (or an access
    token, which this server does not revoke one by one) changes nothing and is not an
    error, so the answer tells nothing about the token."""
    token_hash = refresh_token_hash(token)
    async with uow:
        known = await uow.refresh_tokens.get_by_hash(token_hash)
        if known is None:
            return
        await uow.refresh_tokens.revoke_family(known.family_id, now=utc_now())
        await uow.commit()


async def purge_expired_refresh_tokens(uow: UserUnitOfWork, *, batch: int = 1000) -> int:
    """Forget refresh tokens past their expiry, one batch per transaction; returns how many.
    Until then a spent token is kept, so that its reuse ends its family; after, it is refused
    as unknown (and counts against its client address only, as any unknown token does)."""
    now = utc_now()
    return await purge_in_batches(
        uow,
        lambda open_uow, size: open_uow.refresh_tokens.purge_expired(now, batch=size),
        batch=batch,
    )


async def _add_refresh_token(
    uow: UserUnitOfWork,
    token: str,
    *,
    family_id: uuid.UUID,
    user: User,
    client_id: str,
    ttl: dt.timedelta,
) -> None:
    now = utc_now()
    await uow.refresh_tokens.add(
        token_hash=refresh_token_hash(token),
        family_id=family_id,
        user_id=user.id,
        client_id=client_id,
        session_epoch=user.session_epoch,
        created_at=now,
        expires_at=now + ttl,
    )
