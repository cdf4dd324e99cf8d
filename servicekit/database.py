"""Engine and session factories, the SQL unit of work base, and portable column types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

from sqlalchemy import DateTime, Dialect, MetaData, Numeric, String, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from servicekit.errors import DependencyUnavailable
from servicekit.faults import fault_text
from servicekit.settings import ServiceSettings

# Constraint names that migrations can rely on, the same on SQLite and Postgres.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(
    url: str,
    *,
    application_name: str,
    pool_size: int = 10,
    pre_ping: bool = False,
    connect_timeout: float = 3.0,
    statement_timeout: float = 10.0,
) -> AsyncEngine:
    """An async engine whose every wait is bounded, so a dead database answers fast.

    A pooled connection that the server closed (a restart, a terminated backend) is dropped
    at checkout with no round trip: the driver has already seen the socket close. What that
    cannot see (a network path that died silently) fails its first statement as a
    disconnect, a 503, and SQLAlchemy then invalidates every connection of the pool opened
    before it. ``pre_ping`` checks even that, with a round trip on every checkout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # One connection: transactions queue in the pool instead of failing with SQLITE_BUSY.
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=30,
            connect_args={"timeout": connect_timeout},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        # No overflow: a connection opened for a burst and closed right after costs more than
        # waiting for a pooled one (asyncpg connects with TLS negotiation and auth).
        max_overflow=0,
        pool_timeout=connect_timeout,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        connect_args={
            "timeout": connect_timeout,
            "command_timeout": statement_timeout,
            "server_settings": {"application_name": application_name},
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _drop_if_closed)
    return engine


def _drop_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        # The pool discards this connection and checks out (or opens) another.
        raise DisconnectionError("the server closed this pooled connection")


def create_service_engine(settings: ServiceSettings) -> AsyncEngine:
    """The engine a service's settings describe."""
    return create_engine(
        settings.database_url,
        application_name=settings.service_name,
        pool_size=settings.db_pool_size,
        pre_ping=settings.db_pool_pre_ping,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.db_statement_timeout,
    )


def database_unavailable(url: URL, cause: BaseException) -> DependencyUnavailable:
    """A database fault as the kit's error, naming the server (never the password)."""
    where = url.database if url.get_backend_name() == "sqlite" else f"{url.host}:{url.port or 5432}"
    return DependencyUnavailable(
        f"{url.get_backend_name()} at {where} did not answer: {fault_text(cause)}"
    )


def database_check(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """A readiness probe: one round trip to the database."""

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_session_factory(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work. ``read_only`` ones run each statement on its own, with no
    BEGIN and no ROLLBACK around it: two round trips fewer for a lookup."""
    bind = engine.execution_options(isolation_level="AUTOCOMMIT") if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


class SqlUnitOfWork:
    """One transaction on a session (``servicekit.uow.UnitOfWork``): ``async with uow:``
    rolls back unless ``await uow.commit()`` ran."""

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self.open_repositories(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing a session rolls back whatever was not committed and returns its connection.
        await self.session.close()

    def open_repositories(self, session: AsyncSession) -> None:
        """Subclasses bind their repositories to the session here."""

    async def commit(self) -> None:
        await self.session.commit()

    def unavailable(self, cause: BaseException) -> DependencyUnavailable:
        """``cause``, a fault of this unit of work's database, as the kit's error."""
        bind = self.session.bind
        assert bind is not None, "sessions of a unit of work are bound to an engine"
        engine = bind if isinstance(bind, AsyncEngine) else bind.engine
        return database_unavailable(engine.url, cause)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on Postgres; a decimal string on SQLite, which has no exact numeric type."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 20, scale: int = 4) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        quantized = value.quantize(Decimal(1).scaleb(-self.scale))
        return str(quantized) if dialect.name == "sqlite" else quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)
