"""Alembic, driven from code: each service's env.py calls ``run_env``; starts call ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from servicekit.database import create_engine


def alembic_config(script_location: Path, version_table: str, url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["version_table"] = version_table
    return config


# How often a replica asks again for the migration lock another one holds.
LOCK_RETRY_SECONDS = 0.2


async def migrate(engine: AsyncEngine, script_location: Path, version_table: str) -> None:
    """Upgrade to head. On Postgres an advisory lock lets replicas start side by side."""
    config = alembic_config(script_location, version_table)
    async with engine.connect() as conn:
        is_pg = conn.dialect.name == "postgresql"
        if is_pg:
            await _lock(conn, version_table)
        try:
            await conn.run_sync(_upgrade, config)
            await conn.commit()
        finally:
            if is_pg:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:t))"), {"t": version_table}
                )
                await conn.commit()


async def wait_for_head(
    engine: AsyncEngine,
    script_location: Path,
    version_table: str,
    *,
    within: float,
    every: float = 1.0,
) -> tuple[set[str], set[str]]:
    """Wait, changing nothing, until the database's schema is at the scripts' head (another
    process migrates it: a release's migration Job). Returns the heads it saw and the ones
    wanted; they differ if ``within`` seconds passed first. An unreachable database counts as
    not there yet."""
    wanted = set(
        ScriptDirectory.from_config(alembic_config(script_location, version_table)).get_heads()
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen: set[str] = set()
    while True:
        try:
            async with engine.connect() as conn:
                seen = await conn.run_sync(_current_heads, version_table)
        except (OSError, SQLAlchemyError):
            seen = set()
        if seen == wanted or loop.time() + every > deadline:
            return seen, wanted
        await asyncio.sleep(every)


def _current_heads(connection: Connection, version_table: str) -> set[str]:
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return set(context.get_current_heads())


async def _lock(conn: AsyncConnection, version_table: str) -> None:
    """The migration lock, asked for again and again rather than waited for: a replica
    blocked in ``pg_advisory_lock`` would sit inside a transaction, and a migration that
    builds an index ``CONCURRENTLY`` waits for every transaction older than the build to
    end; the two would wait for each other until Postgres ended one as a deadlock."""
    while True:
        taken = await conn.scalar(
            text("SELECT pg_try_advisory_lock(hashtext(:t))"), {"t": version_table}
        )
        await conn.commit()
        if taken:
            return
        await asyncio.sleep(LOCK_RETRY_SECONDS)


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_env(context: Any, metadata: MetaData) -> None:
    """The body of a service's migrations/env.py."""
    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")
    connection = config.attributes.get("connection")

    def run(conn: Connection) -> None:
        context.configure(
            connection=conn,
            target_metadata=metadata,
            version_table=version_table,
            render_as_batch=conn.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    if connection is not None:
        run(connection)
        return

    async def run_online() -> None:
        # Not in a transaction of ours: Alembic opens its own, which a migration's
        # autocommit block (CREATE INDEX CONCURRENTLY) may end.
        engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
        async with engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_online())


def wait_argument(argv: Sequence[str]) -> float | None:
    """``--wait SECONDS`` of ``python -m <service>.migrate``, if given."""
    parser = argparse.ArgumentParser(description="Apply the service's migrations.")
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="apply nothing: wait until the schema is at head (migrated by another process)",
    )
    wait: float | None = parser.parse_args(list(argv)).wait
    return wait


def migrate_command(
    database_url: str,
    script_location: Path,
    version_table: str,
    *,
    name: str,
    wait: float | None = None,
) -> None:
    """The body of ``python -m <service>.migrate``; with ``wait``, of ``... --wait SECONDS``."""

    async def run() -> None:
        engine = create_engine(database_url, application_name=f"{name}-migrate")
        try:
            if wait is None:
                await migrate(engine, script_location, version_table)
                return
            seen, wanted = await wait_for_head(engine, script_location, version_table, within=wait)
            if seen != wanted:
                have = ", ".join(sorted(seen)) or "none"
                print(
                    f"{name}: schema not at head after {wait:g} s "
                    f"(database: {have}; wanted: {', '.join(sorted(wanted))})",
                    file=sys.stderr,
                )
                raise SystemExit(1)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        # The start stops here with one line, the database named without its password.
        where = make_url(database_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"{name}: migrations failed on {where}: {reason}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{name}: schema at head" if wait is not None else f"{name}: migrations applied")
