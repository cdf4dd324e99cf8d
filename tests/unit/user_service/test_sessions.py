"""The session use cases (refresh, reuse, revoke) through the in-memory twins: no I/O."""

import asyncio
import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import jwt
import pytest

from servicekit.cache import InMemoryCache
from servicekit.clock import utc_now
from servicekit.ratelimit import InMemoryRateLimiter
from user_service.adapters.memory import InMemoryUserDatabase, InMemoryUserUnitOfWork
from user_service.core.auth import TokenIssuer, load_or_create_dev_key
from user_service.core.emails import email_key
from user_service.domain import RefreshTokenRecord, User
from user_service.errors import InvalidGrant, TooManyLoginAttempts
from user_service.services import sessions
from user_service.services.login import LoginLimits

TTL = dt.timedelta(days=30)
LIMITS = LoginLimits(
    max_failures_per_account=10,
    window_seconds=900,
    max_attempts_per_address=100,
    address_window_seconds=60,
)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.database = InMemoryUserDatabase()
        self.store = self.database.refresh_tokens
        self.cache = InMemoryCache()
        self.limiter = InMemoryRateLimiter()
        key = load_or_create_dev_key(tmp_path)
        self.issuer = TokenIssuer(key, issuer="iss", audience="aud", ttl_seconds=900)

    def uow(self) -> InMemoryUserUnitOfWork:
        return self.database()

    def user(self, *, epoch: int = 0) -> User:
        now = utc_now()
        user = User(
            id=uuid.uuid4(),
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            full_name="Ada",
            password_hash="x",
            is_active=True,
            version=1,
            created_at=now,
            updated_at=now,
            session_epoch=epoch,
        )
        self.database.users[user.id] = user
        return user

    def change(self, user: User, **changes: object) -> None:
        self.database.users[user.id] = dataclasses.replace(user, **changes)  # type: ignore[arg-type]

    async def login(self, user: User, client_id: str = "public") -> str:
        return await sessions.open_family(
            self.uow(), user=user, client_id=client_id, refresh_ttl=TTL
        )

    async def refresh(
        self, token: str, *, client_id: str | None = None, ttl: dt.timedelta = TTL
    ) -> sessions.SessionTokens:
        return await sessions.refresh(
            self.uow(),
            self.cache,
            self.issuer,
            self.limiter,
            refresh_token=token,
            client_id=client_id,
            client_address="10.0.0.1",
            limits=LIMITS,
            refresh_ttl=ttl,
        )

    def expire(self, token: str) -> None:
        """Every token of ``token``'s family past its expiry."""
        family_id = self.store.rows[sessions.refresh_token_hash(token)].family_id
        past = utc_now() - dt.timedelta(seconds=1)
        for token_hash, row in list(self.store.rows.items()):
            if row.family_id == family_id:
                self.store.rows[token_hash] = dataclasses.replace(row, expires_at=past)

    def family_of(self, token: str) -> list[RefreshTokenRecord]:
        row = self.store.rows.get(sessions.refresh_token_hash(token))
        return [] if row is None else self.store.family(row.family_id)

    async def failures_of(self, user: User) -> int:
        decision = await self.limiter.peek(
            "login:account:" + email_key(user.email), limit=10, window_seconds=900
        )
        return decision.count


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def claims_of(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def test_a_refresh_rotates_and_carries_the_users_epoch(world: World) -> None:
    user = world.user(epoch=3)
    first = await world.login(user)
    tokens = await world.refresh(first)
    assert tokens.refresh_token != first
    assert claims_of(tokens.access_token)["session_epoch"] == 3
    assert claims_of(tokens.access_token)["sub"] == str(user.id)
    # Stored as a digest only, and the family now has the spent token and its successor.
    assert first not in world.store.rows
    family = world.store.family(world.store.rows[sessions.refresh_token_hash(first)].family_id)
    assert sorted(row.spent_at is None for row in family) == [False, True]
    assert (await world.refresh(tokens.refresh_token)).refresh_token


async def test_reuse_revokes_the_family_and_counts_as_a_failure(world: World) -> None:
    user = world.user()
    first = await world.login(user)
    other = await world.login(user)
    second = (await world.refresh(first)).refresh_token
    with pytest.raises(InvalidGrant):
        await world.refresh(first)
    with pytest.raises(InvalidGrant):
        await world.refresh(second)
    assert await world.failures_of(user) == 2
    assert (await world.refresh(other)).refresh_token  # another family


async def test_of_concurrent_refreshes_at_most_one_succeeds(world: World) -> None:
    token = await world.login(world.user())
    answers = await asyncio.gather(
        *(world.refresh(token) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(a, sessions.SessionTokens) for a in answers) <= 1
    assert all(isinstance(a, sessions.SessionTokens | InvalidGrant) for a in answers)


async def test_a_new_epoch_or_a_deactivation_ends_the_family(world: World) -> None:
    for change in ("epoch", "deactivated"):
        user = world.user()
        token = await world.login(user)
        if change == "epoch":
            world.change(user, session_epoch=1)
        else:
            world.change(user, is_active=False)
        with pytest.raises(InvalidGrant):
            await world.refresh(token)
        record = world.store.rows[sessions.refresh_token_hash(token)]
        assert all(row.revoked_at is not None for row in world.store.family(record.family_id))


async def test_another_client_is_refused_and_the_token_stays_live(world: World) -> None:
    token = await world.login(world.user(), client_id="mobile")
    with pytest.raises(InvalidGrant):
        await world.refresh(token, client_id="web")
    assert world.store.rows[sessions.refresh_token_hash(token)].spent_at is None
    assert (await world.refresh(token, client_id="mobile")).refresh_token


async def test_an_expired_or_unknown_token_is_an_invalid_grant(world: World) -> None:
    user = world.user()
    expired = await sessions.open_family(
        world.uow(), user=user, client_id="public", refresh_ttl=dt.timedelta(seconds=-1)
    )
    for token in (expired, "never-issued"):
        with pytest.raises(InvalidGrant):
            await world.refresh(token)
    assert await world.failures_of(user) == 1  # the unknown token names no account


async def test_revoke_ends_the_family_and_ignores_unknown_tokens(world: World) -> None:
    token = await world.login(world.user())
    await sessions.revoke(world.uow(), token="never-issued")
    assert all(row.revoked_at is None for row in world.store.rows.values())
    await sessions.revoke(world.uow(), token=token)
    with pytest.raises(InvalidGrant):
        await world.refresh(token)


async def test_every_refresh_counts_against_the_address(world: World) -> None:
    token = await world.login(world.user())
    for _ in range(LIMITS.max_attempts_per_address):
        with pytest.raises(InvalidGrant):
            await world.refresh("never-issued")
    with pytest.raises(TooManyLoginAttempts):
        await world.refresh(token)


async def test_expired_tokens_are_purged_and_unexpired_ones_kept(world: World) -> None:
    user = world.user()
    ended = await world.login(user)
    ended_next = (await world.refresh(ended)).refresh_token
    world.expire(ended)
    expired_at_once = await sessions.open_family(
        world.uow(), user=user, client_id="public", refresh_ttl=dt.timedelta(seconds=-1)
    )
    live = await world.login(user)
    live_next = (await world.refresh(live)).refresh_token
    revoked = await world.login(user)
    await sessions.revoke(world.uow(), token=revoked)
    # Its newest token has expired, the spent one before it has not.
    shortened = await world.login(user)
    shortened_next = (await world.refresh(shortened, ttl=dt.timedelta(seconds=-1))).refresh_token

    # A batch of one: one token per transaction, until a round finds nothing.
    assert await sessions.purge_expired_refresh_tokens(world.uow(), batch=1) == 4
    for token in (ended, ended_next, expired_at_once, shortened_next):
        assert world.family_of(token) == []
    assert [len(world.family_of(t)) for t in (live, revoked, shortened)] == [2, 1, 1]
    assert await sessions.purge_expired_refresh_tokens(world.uow()) == 0

    # Reuse of a spent token still found while it has not expired: it ends its family.
    with pytest.raises(InvalidGrant):
        await world.refresh(live)
    with pytest.raises(InvalidGrant):
        await world.refresh(live_next)
    # A purged token is unknown now: refused, and counted against the address only.
    before = await world.failures_of(user)
    with pytest.raises(InvalidGrant):
        await world.refresh(ended_next)
    assert await world.failures_of(user) == before
