"""Refresh tokens past their expiry leave the database, on real SQLite and real Postgres: by
the use case, and by the running user service itself
(``REFRESH_TOKEN_PURGE_INTERVAL_SECONDS``); the unexpired ones stay, spent and revoked ones
included, so that their reuse is still found."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.clock import utc_now
from servicekit.database import create_engine, create_session_factory
from servicekit.migrations import alembic_config, migrate
from servicekit.ratelimit import InMemoryRateLimiter
from tests.support.backing import postgres_database
from tests.support.deployments import INTERNAL_TOKEN
from user_service.adapters.sql_unit_of_work import SqlUserUnitOfWork
from user_service.core.config import UserSettings
from user_service.core.database import MIGRATIONS, VERSION_TABLE
from user_service.domain import User
from user_service.main import build_user_service
from user_service.services.sessions import purge_expired_refresh_tokens

HOUR = dt.timedelta(hours=1)
# Long enough for dozens of rounds at the interval below on a loaded machine; a service that
# purged only at its start, or on the default interval, would keep the tokens past it.
PATIENCE_S = 30.0


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
        return
    async with postgres_database("sessions") as url:
        yield url


class Sessions:
    """Refresh-token families written as logins and refreshes leave them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = create_session_factory(engine)
        self.user_id = uuid.uuid4()

    def uow(self) -> SqlUserUnitOfWork:
        return SqlUserUnitOfWork(self._sessions)

    async def add_user(self) -> None:
        now = utc_now()
        user = User(
            id=self.user_id,
            email=f"{self.user_id.hex}@example.com",
            full_name="Ada",
            password_hash="x",
            is_active=True,
            created_at=now,
            updated_at=now,
            version=1,
        )
        async with self.uow() as uow:
            await uow.users.add(user)
            await uow.commit()

    async def family(self, *expiries: dt.timedelta, revoked: bool = False) -> list[str]:
        """Tokens expiring at now + each of ``expiries``, every one but the last spent (at
        its creation, an hour before its expiry)."""
        family_id, hashes, now = uuid.uuid4(), [], utc_now()
        async with self.uow() as uow:
            for number, expiry in enumerate(expiries):
                token_hash = uuid.uuid4().hex * 2
                await uow.refresh_tokens.add(
                    token_hash=token_hash,
                    family_id=family_id,
                    user_id=self.user_id,
                    client_id="public",
                    session_epoch=0,
                    created_at=now + expiry - HOUR,
                    expires_at=now + expiry,
                )
                if number < len(expiries) - 1:
                    assert await uow.refresh_tokens.spend(token_hash, now=now + expiry - HOUR)
                hashes.append(token_hash)
            if revoked:
                await uow.refresh_tokens.revoke_family(family_id, now=now)
            await uow.commit()
        return hashes

    async def left(self, hashes: list[str]) -> int:
        async with self.uow() as uow:
            return sum([await uow.refresh_tokens.get_by_hash(h) is not None for h in hashes])

    async def until_gone(self, hashes: list[str]) -> None:
        while True:
            if not await self.left(hashes):
                return
            await asyncio.sleep(0.1)


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url, application_name="test")
    await migrate(engine, MIGRATIONS, VERSION_TABLE)
    yield engine
    await engine.dispose()


async def test_expired_tokens_are_purged_and_the_others_kept(engine: AsyncEngine) -> None:
    sessions = Sessions(engine)
    await sessions.add_user()
    ended = await sessions.family(-2 * HOUR, -HOUR)
    ended_at_once = await sessions.family(-HOUR)
    live = await sessions.family(2 * HOUR, 3 * HOUR)
    revoked = await sessions.family(2 * HOUR, revoked=True)
    # Its newest token has expired, the spent one before it has not.
    shortened = await sessions.family(2 * HOUR, -HOUR)

    # A batch of one: one token per transaction, until a round finds nothing.
    assert await purge_expired_refresh_tokens(sessions.uow(), batch=1) == 4
    assert [await sessions.left(h) for h in (ended, ended_at_once)] == [0, 0]
    assert [await sessions.left(h) for h in (live, revoked, shortened)] == [2, 1, 1]
    assert await sessions.left(shortened[:1]) == 1
    assert await purge_expired_refresh_tokens(sessions.uow()) == 0


async def test_the_running_service_purges_expired_tokens(
    url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = UserSettings(
        database_url=url,
        internal_api_token=INTERNAL_TOKEN,
        data_dir=tmp_path,
        refresh_token_purge_interval_seconds=0.1,
    )
    async with build_user_service(
        settings, cache=InMemoryCache(), bus=InMemoryBus(), limiter=InMemoryRateLimiter()
    ):
        sessions = Sessions(engine)
        await sessions.add_user()
        # Written after the start, so only a later round of the service can remove it.
        await asyncio.sleep(0.3)
        expired = await sessions.family(-2 * HOUR, -HOUR)
        live = await sessions.family(HOUR, 2 * HOUR)
        async with asyncio.timeout(PATIENCE_S):
            await sessions.until_gone(expired)
        assert await sessions.left(live) == 2


async def test_the_upgrade_from_the_release_before_keeps_tokens_and_builds_the_index() -> None:
    """On Postgres, where the index is built outside a transaction (``CONCURRENTLY``): the
    tokens stay, and the index the purge relies on is there and valid (a concurrent build
    that failed would leave it invalid)."""

    def upgrade_to_the_release_before(connection: Connection) -> None:
        config = alembic_config(MIGRATIONS, VERSION_TABLE)
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")

    async with postgres_database("sessions") as url:
        engine = create_engine(url, application_name="test")
        try:
            async with engine.connect() as connection:
                await connection.run_sync(upgrade_to_the_release_before)
                await connection.commit()
            sessions = Sessions(engine)
            await sessions.add_user()
            tokens = await sessions.family(-HOUR, HOUR)
            await migrate(engine, MIGRATIONS, VERSION_TABLE)
            async with engine.connect() as connection:
                valid = await connection.scalar(
                    text(
                        "SELECT indisvalid FROM pg_index "
                        "WHERE indexrelid = 'ix_refresh_token_expires_at'::regclass"
                    )
                )
            assert valid is True
            assert await sessions.left(tokens) == 2
        finally:
            await engine.dispose()
