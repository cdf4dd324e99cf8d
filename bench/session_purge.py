"""What the user service's purge of expired refresh tokens costs on a large table.

``python -m bench.session_purge [--families N] [--expired FRACTION]`` loads N refresh-token
families of two tokens each (a spent one and its successor) into a scratch Postgres database
of the user service's schema, FRACTION of them expired, the others not; then prints the plan
of one batch's DELETE, and times the purge as the service runs it (batches of 1,000 tokens,
one transaction each) and a second purge that finds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg
from sqlalchemy.dialects import postgresql

from bench.bulk_load import asyncpg_dsn
from bench.run import ADMIN_DSN
from devstack.postgres import ScratchDatabases
from servicekit.clock import utc_now
from servicekit.database import create_engine, create_session_factory
from servicekit.migrations import migrate
from user_service.adapters.sql_unit_of_work import SqlUserUnitOfWork
from user_service.core.database import MIGRATIONS, VERSION_TABLE
from user_service.repositories.refresh_token_repository import delete_expired
from user_service.services.sessions import purge_expired_refresh_tokens

USER = """
INSERT INTO user_account (id, email, full_name, password_hash, is_active, version, created_at,
                          updated_at)
VALUES ($1, 'bench@example.com', 'A', 'x', true, 1, now(), now())
"""
# Both tokens of family n have expired when n % $3 = 0; the others expire in a week or so.
TOKENS = """
INSERT INTO refresh_token
SELECT gen_random_uuid(), md5(n || '-' || t), md5(n::text)::uuid, $1, 'public', 0,
       now() - interval '40 days',
       CASE WHEN n % $3 = 0 THEN now() - interval '10 days' + t * interval '1 day'
            ELSE now() + interval '7 days' + t * interval '1 day' END,
       CASE WHEN t = 0 THEN now() - interval '20 days' END,
       NULL
FROM generate_series(1, $2) AS n, generate_series(0, 1) AS t
"""


async def measure(families: int, expired_every: int) -> None:
    databases = ScratchDatabases.unique(ADMIN_DSN, "purge")
    await databases.create()
    url = databases.url(databases.names[0])
    engine = create_engine(url, application_name="bench")
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            user_id = uuid.uuid4()
            await connection.execute(USER, user_id)
            started = time.perf_counter()
            await connection.execute(TOKENS, user_id, families, expired_every)
            await connection.execute("VACUUM ANALYZE refresh_token")
            print(f"loaded {2 * families:,} tokens in {time.perf_counter() - started:.1f} s")
            await explain_one_batch(connection)
            sessions = create_session_factory(engine)
            for attempt in ("purge", "purge again"):
                started = time.perf_counter()
                purged = await purge_expired_refresh_tokens(SqlUserUnitOfWork(sessions))
                elapsed = time.perf_counter() - started
                print(f"{attempt}: {purged:,} tokens in {elapsed * 1000:.0f} ms")
            left = await connection.fetchval("SELECT count(*) FROM refresh_token")
            print(f"left: {left:,} tokens")
        finally:
            await connection.close()
    finally:
        await engine.dispose()
        await databases.drop()


async def explain_one_batch(connection: asyncpg.Connection) -> None:
    """The plan of one batch's DELETE on the loaded table, rolled back."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statement = delete_expired(utc_now(), batch=1000).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    transaction = connection.transaction()
    await transaction.start()
    try:
        for row in await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}"):
            print("  " + row[0])
    finally:
        await transaction.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", type=int, default=500_000)
    parser.add_argument("--expired", type=float, default=0.1, help="the fraction expired")
    args = parser.parse_args()
    asyncio.run(measure(args.families, max(1, round(1 / args.expired))))


if __name__ == "__main__":
    main()
