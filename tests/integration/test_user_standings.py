"""The reads behind ``verify_user`` on a real Postgres: the asyncpg read agrees with the
session read, and the memory of user standings forgets a user when the database says it changed,
forgets everything when it may have missed a change, and stays off with nothing to say so."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.database import create_engine, create_session_factory
from servicekit.errors import DependencyUnavailable
from servicekit.migrations import migrate
from servicekit.postgres import PostgresListener, PostgresLookups
from servicekit.ratelimit import InMemoryRateLimiter
from tests.support.backing import postgres_database
from tests.support.deployments import INTERNAL_TOKEN
from user_service.adapters.user_standings import (
    USER_CHANGES_CHANNEL,
    USER_CHANGES_SENDER_EXISTS,
    PostgresUserProfiles,
    PostgresUserStandings,
    RememberedUserStandings,
    SqlUserProfiles,
    SqlUserStandings,
)
from user_service.core.config import UserSettings
from user_service.core.database import MIGRATIONS, VERSION_TABLE
from user_service.domain import UserStanding
from user_service.main import build_user_service
from user_service.services.ports import UserProfiles, UserStandings

PATIENCE = 10.0  # a bound for failures only


@dataclass
class Database:
    url: str
    dsn: str
    lookups: PostgresLookups

    async def execute(self, sql: str, *args: object) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(sql, *args)
        finally:
            await connection.close()

    async def add_user(self, *, active: bool = True) -> uuid.UUID:
        user_id = uuid.uuid4()
        now = dt.datetime.now(dt.UTC)
        await self.execute(
            "INSERT INTO user_account VALUES ($1, $2, 'A', 'hash', $3, 1, $4, $4)",
            user_id,
            f"{user_id.hex}@example.com",
            active,
            now,
        )
        return user_id

    async def deactivate(self, user_id: uuid.UUID) -> None:
        await self.execute(
            "UPDATE user_account SET is_active = false, version = version + 1 WHERE id = $1",
            user_id,
        )


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with postgres_database("states") as url:
        engine = create_engine(url, application_name="states-test")
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        await engine.dispose()
        lookups = PostgresLookups(url, application_name="states-test", connect_timeout=2.0)
        await lookups.start()
        try:
            yield Database(url, lookups.dsn, lookups)
        finally:
            await lookups.close()


class CountingStandings:
    """Counts the reads that reach the database."""

    def __init__(self, inner: UserStandings) -> None:
        self.inner = inner
        self.reads = 0

    async def get(self, user_id: uuid.UUID) -> UserStanding | None:
        self.reads += 1
        return await self.inner.get(user_id)


@contextlib.asynccontextmanager
async def remembered(
    database: Database, *, ready_timeout: float = PATIENCE
) -> AsyncIterator[tuple[RememberedUserStandings, CountingStandings, PostgresListener]]:
    counting = CountingStandings(PostgresUserStandings(database.lookups))
    listener = database.lookups.listener(USER_CHANGES_CHANNEL, check_interval=0.2)
    states = RememberedUserStandings(counting, live=lambda: listener.live)
    await listener.start(
        on_notify=states.changed,
        on_reset=states.forget_all,
        sender_exists=USER_CHANGES_SENDER_EXISTS,
        ready_timeout=ready_timeout,
    )
    try:
        yield states, counting, listener
    finally:
        await listener.close()


async def until(condition: Callable[[], object], what: str) -> None:
    try:
        async with asyncio.timeout(PATIENCE):
            while not condition():  # noqa: ASYNC110 (the listener has no event for this)
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"{what}: not within {PATIENCE}s")


async def test_the_asyncpg_reads_and_the_session_reads_agree(database: Database) -> None:
    active, inactive, missing = (
        await database.add_user(),
        await database.add_user(active=False),
        uuid.uuid4(),
    )
    engine = create_engine(database.url, application_name="states-test")
    try:
        sessions = create_session_factory(engine, read_only=True)
        pairs: list[tuple[UserStandings | UserProfiles, UserStandings | UserProfiles]] = [
            (SqlUserStandings(sessions), PostgresUserStandings(database.lookups)),
            (SqlUserProfiles(sessions), PostgresUserProfiles(database.lookups)),
        ]
        for by_session, by_asyncpg in pairs:
            for user_id in (active, inactive, missing):
                assert await by_asyncpg.get(user_id) == await by_session.get(user_id)
        standing = await PostgresUserStandings(database.lookups).get(inactive)
        assert standing is not None
        assert (standing.id, standing.is_active, standing.version) == (inactive, False, 1)
        assert standing.email == f"{inactive.hex}@example.com"
        profile = await PostgresUserProfiles(database.lookups).get(inactive)
        assert profile is not None
        assert (profile.id, profile.full_name, profile.is_active) == (inactive, "A", False)
        assert profile.created_at.tzinfo is not None
        assert await PostgresUserProfiles(database.lookups).get(missing) is None
    finally:
        await engine.dispose()


async def test_a_read_straight_on_asyncpg_names_the_server_it_could_not_reach() -> None:
    lookups = PostgresLookups(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        application_name="states-test",
        connect_timeout=1.0,
    )
    await lookups.start()
    try:
        with pytest.raises(DependencyUnavailable, match=r"postgresql at 127\.0\.0\.1:1 "):
            await PostgresUserProfiles(lookups).get(uuid.uuid4())
    finally:
        await lookups.close()


async def test_a_remembered_user_is_read_again_once_the_database_says_it_changed(
    database: Database,
) -> None:
    user_id = await database.add_user()
    async with remembered(database) as (states, counting, listener):
        assert listener.live
        first = await states.get(user_id)
        assert first is not None
        assert first.is_active
        assert await states.get(user_id) == first
        assert counting.reads == 1  # the second answer came from memory
        await database.deactivate(user_id)  # plain SQL: the trigger notifies at commit

        async def fresh() -> UserStanding | None:
            return await states.get(user_id)

        async with asyncio.timeout(PATIENCE):
            while (now := await fresh()) is not None and now.is_active:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert now is not None
        assert now.version == 2


async def test_the_memory_is_dropped_when_the_feed_was_down(database: Database) -> None:
    """A change made while the listening connection is gone is never notified; the memory is
    not used meanwhile, and is emptied when the feed is live again."""
    user_id = await database.add_user()
    async with remembered(database) as (states, counting, listener):
        assert (await states.get(user_id) or pytest.fail("no user")).is_active
        await database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'states-test-listener' AND datname = current_database()"
        )
        await until(lambda: not listener.live, "the listener notices")
        await database.deactivate(user_id)  # notified to nobody
        during = await states.get(user_id)
        assert during is not None
        assert not during.is_active
        await until(lambda: listener.live, "the listener is back")
        after = await states.get(user_id)
        assert after is not None
        assert not after.is_active
        assert counting.reads == 3


async def test_without_the_trigger_the_memory_stays_off(database: Database) -> None:
    await database.execute("DROP TRIGGER user_account_changed ON user_account")
    user_id = await database.add_user()
    async with remembered(database, ready_timeout=1.0) as (states, counting, listener):
        assert not listener.live
        await states.get(user_id)
        await states.get(user_id)
        assert counting.reads == 2
        assert len(states) == 0


async def test_the_service_remembers_at_most_user_standings_memory_max_users(
    database: Database, tmp_path: Path
) -> None:
    settings = UserSettings(
        database_url=database.url,
        internal_api_token=INTERNAL_TOKEN,
        data_dir=tmp_path,
        migrate_on_start=False,
        user_standings_memory_max=2,
    )
    async with build_user_service(
        settings, cache=InMemoryCache(), bus=InMemoryBus(), limiter=InMemoryRateLimiter()
    ) as state:
        states = state.user_standings
        assert isinstance(states, RememberedUserStandings)
        users = [await database.add_user() for _ in range(3)]
        for user_id in users:
            assert await states.get(user_id) is not None
        assert len(states) == 2
