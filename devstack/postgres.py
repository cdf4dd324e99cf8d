"""Scratch databases on the local Postgres: unique names, created from its maintenance
database, dropped afterwards (``WITH (FORCE)``: a crashed run's connections do not keep one).

The core is asyncpg (async); ``created()`` is its face for blocking callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import urllib.parse
import uuid
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import asyncpg

# The maintenance database of the local Postgres, where scratch databases are made and dropped.
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from blocking code, in a thread of its own: the caller may
    itself be inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def postgres_address(admin_dsn: str = DEFAULT_ADMIN_DSN) -> tuple[str, int]:
    """Host and port of the server (what a proxy in front of it forwards to)."""
    parts = urllib.parse.urlsplit(admin_dsn)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def database_url(admin_dsn: str, database: str, *, via: str | None = None) -> str:
    """The SQLAlchemy asyncpg URL of ``database`` on the admin DSN's server, with its
    credentials, or through ``via`` (``host:port`` of a proxy in front of that server)."""
    server = urllib.parse.urlsplit(admin_dsn).netloc
    if via is not None:
        server = f"{server.rpartition('@')[0]}@{via}" if "@" in server else via
    return f"postgresql+asyncpg://{server}/{database}"


@functools.cache
def postgres_problem(admin_dsn: str = DEFAULT_ADMIN_DSN) -> str | None:
    """Why no scratch database can be made here (checked once per process), or None."""

    async def probe() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=3)
        await conn.close()

    try:
        run_blocking(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"Postgres not reachable at {admin_dsn} ({type(exc).__name__}: {exc})"
    return None


async def _administer(admin_dsn: str, statements: Iterable[str]) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@dataclass(frozen=True)
class ScratchDatabases:
    """Databases with names of their own on one server; ``create``, then ``drop``."""

    admin_dsn: str
    names: tuple[str, ...]

    @classmethod
    def unique(cls, admin_dsn: str, prefix: str, *roles: str) -> ScratchDatabases:
        """``<prefix>_<run>_<role>`` for each role (one ``<prefix>_<run>`` without roles)."""
        run = uuid.uuid4().hex[:12]
        names = tuple("_".join(filter(None, (prefix, run, role))) for role in roles or ("",))
        return cls(admin_dsn, names)

    def url(self, database: str, *, via: str | None = None) -> str:
        return database_url(self.admin_dsn, database, via=via)

    async def create(self) -> None:
        await _administer(self.admin_dsn, [f'CREATE DATABASE "{name}"' for name in self.names])

    async def drop(self) -> None:
        await _administer(
            self.admin_dsn,
            [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.names],
        )

    @contextlib.contextmanager
    def created(self) -> Iterator[Self]:
        """For blocking callers: the databases exist inside the block, and are dropped after."""
        run_blocking(self.create())
        try:
            yield self
        finally:
            run_blocking(self.drop())


async def prepared_plan(
    connection: asyncpg.Connection, sql: str, args: Sequence[Any], *, executions: int = 6
) -> list[str]:
    """The plan Postgres runs for the statement ``sql`` (``$n`` placeholders) as a prepared
    statement, as a pooled connection does, after ``executions`` runs with ``args``: by the
    sixth it has chosen between planning each execution with its values and keeping one
    generic plan. As its nodes: ``Index Scan on customer_order`` ... (An ``EXPLAIN`` sent
    with parameters would show a plan made for their values, whatever a prepared statement
    would keep.)"""
    arguments = ", ".join(_literal(value) for value in args)
    await connection.execute("DEALLOCATE ALL")
    await connection.execute(f"PREPARE planned AS {sql}")
    for _ in range(executions):
        await connection.execute(f"EXECUTE planned({arguments})")
    raw = await connection.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE planned({arguments})")
    nodes: list[str] = []
    waiting = [json.loads(raw)[0]["Plan"]]
    while waiting:
        node = waiting.pop(0)
        relation = node.get("Relation Name")
        nodes.append(node["Node Type"] + (f" on {relation}" if relation else ""))
        waiting.extend(node.get("Plans", []))
    return nodes


def _literal(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"
