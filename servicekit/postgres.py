"""asyncpg used directly, beside the engine: the hot reads of one statement outside any
transaction (a verification, a profile, a page of orders), the order writer's batches, and
change notifications.

Everything else goes through SQLAlchemy. These exist because the engine costs too much on the
hot paths (a session, a transaction's round trips, its processing of every row and parameter)
and cannot ``LISTEN`` at all. The statements are still the repositories' own, built with
SQLAlchemy and compiled once for asyncpg (``AsyncpgStatement``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

import asyncpg
from opentelemetry.trace import Span, SpanKind, Tracer, get_current_span
from sqlalchemy import Select, Table, bindparam, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from servicekit.errors import DependencyUnavailable
from servicekit.faults import DEPENDENCY_FAULTS, fault_text
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)


def insert_from_arrays(table: Table) -> postgresql.Insert:
    """An INSERT of many rows as one statement: each column one array parameter, named as
    the column (``column_arrays``), the rows ``unnest``-ed
    from them. One round trip and one statement whatever the number of rows, where an
    executemany costs a statement's work per row."""
    arrays = [bindparam(column.name, type_=ARRAY(column.type)) for column in table.columns]
    rows: Select[Any] = select(literal_column("*")).select_from(func.unnest(*arrays).alias("batch"))
    return postgresql.insert(table).from_select([column.name for column in table.columns], rows)


def column_arrays(table: Table, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The parameters of ``insert_from_arrays(table)`` for ``rows`` (one mapping per row, by
    column name, as an executemany takes them)."""
    return {column.name: [row[column.name] for row in rows] for column in table.columns}


class AsyncpgStatement:
    """A SQLAlchemy statement as asyncpg takes it, compiled once: SQL with ``$n``
    placeholders, and its parameters in their order, the constants the statement binds
    itself included."""

    def __init__(self, statement: ClauseElement) -> None:
        dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        self._names = tuple(compiled.positiontup or ())
        self._constants = {n: b.value for n, b in compiled.binds.items() if not b.required}

    def args(self, **params: Any) -> list[Any]:
        return [params[n] if n in params else self._constants[n] for n in self._names]


# Every statement of these reads is planned with its values, each time. asyncpg prepares
# every statement, and after five executions Postgres may keep one plan made without the
# values: for a page of orders after a cursor, on a table past 8 MB and not yet analysed,
# that plan read every order of the table in parallel and sorted them (docs/benchmarks.md,
# "A list that fell"). How many orders a user has varies by orders of magnitude, which a
# plan for no user in particular cannot know.
SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def _closed(connection: asyncpg.Connection) -> bool:
    """Whether the server closed ``connection``. A pooled one the server closed may already
    be detached from its pool (the pool lets a closed connection go), and then says nothing
    but that."""
    try:
        return bool(connection.is_closed())
    except asyncpg.InterfaceError:
        return True


class PostgresLookups:
    """Single-statement reads on a small asyncpg pool of their own.

    Through the engine, a one-row primary-key read costs a session, a checkout and the
    driver adapter, several times what asyncpg alone takes (docs/benchmarks.md, change 15).
    Only reads that need no transaction belong here. The pool connects on first use and
    replaces connections the server closed; every wait is bounded as the engine's are. A
    connection needs no session reset between these reads (asyncpg still rolls back a
    transaction left open), which saves a round trip per read."""

    def __init__(
        self,
        url: str,
        *,
        application_name: str,
        size: int = 4,
        connect_timeout: float = 3.0,
        statement_timeout: float = 10.0,
        tracer: Tracer | None = None,
        on_fault: Callable[[BaseException], None] | None = None,
    ) -> None:
        """``on_fault``: told of every fault of the server (the metrics' error count)."""
        parsed = make_url(url)
        self.dsn = parsed.set(drivername="postgresql").render_as_string(False)
        self._host = parsed.host or "localhost"
        self.address = f"{self._host}:{parsed.port or 5432}"
        self.application_name = application_name
        self.connect_timeout = connect_timeout
        self._size = size
        self._turns = asyncio.Semaphore(size)
        self._statement_timeout = statement_timeout
        self._pool: asyncpg.Pool | None = None
        self._tracer = tracer
        self._on_fault = on_fault
        self._database = parsed.database or ""

    @classmethod
    def of(
        cls,
        settings: ServiceSettings,
        *,
        tracer: Tracer | None = None,
        on_fault: Callable[[BaseException], None] | None = None,
    ) -> PostgresLookups | None:
        """For a service on Postgres; None on any other database. With ``tracer``, a read
        made inside a sampled trace is a span of it, as the engine's statements are."""
        if make_url(settings.database_url).get_backend_name() != "postgresql":
            return None
        return cls(
            settings.database_url,
            application_name=settings.service_name,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.db_statement_timeout,
            tracer=tracer,
            on_fault=on_fault,
        )

    async def start(self) -> None:
        self._turns = asyncio.Semaphore(self._size)
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self._size,
            timeout=self.connect_timeout,
            command_timeout=self._statement_timeout,
            server_settings={
                "application_name": self.application_name,
                **SESSION_SETTINGS,
            },
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def fetch_row(self, query: str, *args: Any) -> asyncpg.Record | None:
        """The first row of ``query``, or None."""
        rows = await self.fetch(query, *args)
        return rows[0] if rows else None

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Every row of ``query``, prepared once per connection. A fault of the server is the
        kit's ``DependencyUnavailable``, naming its address."""
        span = self._span(query)
        if span is None:
            return await self._fetch(query, args)
        with span:
            return await self._fetch(query, args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """One transaction on a connection of the pool: committed when the block ends, rolled
        back when it raises. Faults as ``fetch``'s."""
        async with self._connection() as connection:
            transaction = connection.transaction()
            await transaction.start()
            try:
                yield PostgresTransaction(self, connection)
            except BaseException:
                # On a connection the server closed there is nothing to roll back, and asyncpg
                # would raise that it is closed in place of what ended the block.
                if not _closed(connection):
                    await transaction.rollback()
                raise
            await transaction.commit()

    async def _fetch(self, query: str, args: tuple[Any, ...]) -> list[asyncpg.Record]:
        async with self._connection() as connection:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
            return rows

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in turn (``_take``), given back after the block. A fault of the server
        is the kit's ``DependencyUnavailable``, and so is whatever asyncpg raises on a
        connection the server closed (that it is closed, or that its protocol was cut in the
        middle of an operation)."""
        connection = await self._take()
        try:
            try:
                yield connection
            except Exception as exc:
                if _closed(connection) and not isinstance(exc, DEPENDENCY_FAULTS):
                    raise self._unavailable(exc) from exc
                raise
            finally:
                await self._give_back(connection)
        except DEPENDENCY_FAULTS as exc:
            raise self._unavailable(exc) from exc

    async def _take(self) -> asyncpg.Connection:
        """A connection, in turn: first come, first served, and no more at once than the pool
        has connections. On its own, the pool hands a freed connection to whichever caller
        asks next, so that under load a waiting read is passed over again and again (a p99
        of several times the p50: docs/benchmarks.md). One deadline for the turn and the
        connection, rather than acquire(timeout=), which costs a task per call."""
        if self._pool is None:
            raise RuntimeError("PostgresLookups used before start()")
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._turns.acquire()
                try:
                    connection: asyncpg.Connection = await self._pool.acquire()
                    return connection
                except BaseException:
                    self._turns.release()
                    raise
        except DEPENDENCY_FAULTS as exc:
            raise self._unavailable(exc) from exc

    async def _give_back(self, connection: asyncpg.Connection) -> None:
        try:
            if self._pool is not None:
                await self._pool.release(connection)
        finally:
            self._turns.release()

    def pool_figures(self) -> tuple[int, int, int]:
        """The pool's connections in use, idle, and the most it opens (for the metrics)."""
        pool = self._pool
        if pool is None:
            return (0, 0, self._size)
        idle = pool.get_idle_size()
        return (pool.get_size() - idle, idle, pool.get_max_size())

    def _unavailable(self, exc: BaseException) -> DependencyUnavailable:
        if self._on_fault is not None:
            self._on_fault(exc)
        return DependencyUnavailable(
            f"postgresql at {self.address} did not answer: {fault_text(exc)}"
        )

    def _span(self, query: str) -> AbstractContextManager[Span] | None:
        """A client span for ``query`` when the current span records (a sampled trace)."""
        if self._tracer is None or not get_current_span().is_recording():
            return None
        return self._tracer.start_as_current_span(
            f"{query.split(None, 1)[0]} {self._database}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.name": self._database,
                "db.statement": query,
                "server.address": self._host,
            },
        )

    def listener(self, channel: str, *, check_interval: float = 1.0) -> PostgresListener:
        return PostgresListener(
            self.dsn,
            channel,
            application_name=f"{self.application_name}-listener",
            connect_timeout=self.connect_timeout,
            check_interval=check_interval,
        )


class PostgresTransaction:
    """The statements of one ``PostgresLookups.transaction``."""

    def __init__(self, lookups: PostgresLookups, connection: asyncpg.Connection) -> None:
        self._lookups = lookups
        self._connection = connection

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        span = self._lookups._span(query)
        if span is None:
            return cast(list[asyncpg.Record], await self._connection.fetch(query, *args))
        with span:
            return cast(list[asyncpg.Record], await self._connection.fetch(query, *args))


async def _keep_session(_: asyncpg.Connection) -> None:
    """Nothing to reset: the pool's users set no session state."""


class NoSender(Exception):
    """The channel has no sender: listening to it proves nothing."""


class PostgresListener:
    """``LISTEN`` on one channel over a connection of its own, re-established after any fault.

    ``live`` is true only while notifications are sure to arrive: from the moment the
    ``LISTEN`` took effect until the connection is found lost (at once when the server closes
    it; within ``check_interval`` plus ``connect_timeout`` when it goes silent, by a
    ``SELECT 1`` on the connection). ``on_reset`` runs every time the feed goes live: whatever
    a consumer kept from before may have missed a notification and must be dropped."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        application_name: str,
        connect_timeout: float,
        check_interval: float = 1.0,
        reconnect_delay: float = 0.2,
        max_reconnect_delay: float = 2.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify: Callable[[str], None] = _ignore
        self._on_reset: Callable[[], None] = _nothing
        self._application_name = application_name
        self._connect_timeout = connect_timeout
        self._check_interval = check_interval
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._task: asyncio.Task[None] | None = None
        self._went_live = asyncio.Event()
        self._sender_exists: str | None = None
        self.live = False
        url = make_url(dsn)
        self._address = f"{url.host or 'localhost'}:{url.port or 5432}"

    async def start(
        self,
        *,
        on_notify: Callable[[str], None],
        on_reset: Callable[[], None],
        sender_exists: str | None = None,
        ready_timeout: float = 2.0,
    ) -> None:
        """Start listening; wait (bounded) until live. Not live yet is not an error.

        ``sender_exists`` is a query that returns a row only if something will notify (say,
        a trigger): a channel nobody sends on would look like a world without changes."""
        self._on_notify, self._on_reset = on_notify, on_reset
        self._sender_exists = sender_exists
        self._task = asyncio.create_task(self._run(), name=f"listen-{self._channel}")
        try:
            await asyncio.wait_for(self._went_live.wait(), ready_timeout)
        except TimeoutError:
            log.info(
                "not listening on %s at postgres %s yet; retrying in the background",
                self._channel,
                self._address,
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_notify(payload)

    def _terminated(self, lost: asyncio.Future[None], _connection: Any) -> None:
        self._lost(lost)

    def _lost(self, lost: asyncio.Future[None]) -> None:
        self.live = False
        if not lost.done():
            lost.set_result(None)

    async def _run(self) -> None:
        delay = self._reconnect_delay
        # Said once when the feed goes (or cannot start) and once when it is back, not at
        # every attempt between.
        lost_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            connection: asyncpg.Connection | None = None
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=self._connect_timeout,
                    command_timeout=self._connect_timeout,
                    server_settings={"application_name": self._application_name},
                )
                connection.add_termination_listener(functools.partial(self._terminated, lost))
                await connection.add_listener(self._channel, self._notified)
                if self._sender_exists and await connection.fetchrow(self._sender_exists) is None:
                    raise NoSender(f"nothing notifies {self._channel}; not applied a migration?")
                self._on_reset()
                self.live = True
                self._went_live.set()
                delay = self._reconnect_delay
                if lost_since is not None:
                    log.warning(
                        "listening on %s at postgres %s again after %.1fs",
                        self._channel,
                        self._address,
                        loop.time() - lost_since,
                    )
                    lost_since = None
                else:
                    log.info("listening on %s at postgres %s", self._channel, self._address)
                while True:
                    try:
                        await asyncio.wait_for(asyncio.shield(lost), self._check_interval)
                    except TimeoutError:
                        await connection.execute("SELECT 1")  # bounded by command_timeout
                        continue
                    raise ConnectionError("the listening connection closed")
            except Exception as exc:  # whatever it was, the feed is not live; keep trying
                self._lost(lost)
                if lost_since is None:
                    lost_since = loop.time()
                    log.warning(
                        "not listening on %s at postgres %s (%r); retrying until it is back",
                        self._channel,
                        self._address,
                        exc,
                    )
                else:
                    log.debug("postgres %s still unavailable: %r", self._address, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
            finally:
                self._lost(lost)
                if connection is not None:
                    connection.terminate()


def _ignore(_: str) -> None:
    return None


def _nothing() -> None:
    return None
