"""The order service itself deletes Idempotency-Key records past their TTL, again and again
while it runs (``IDEMPOTENCY_PURGE_INTERVAL_SECONDS``), on a real Postgres: the table does not
grow forever."""

import asyncio
import datetime as dt
import uuid

from order_service.adapters.sql_unit_of_work import SqlOrderUnitOfWork
from order_service.core.config import OrderSettings
from order_service.domain import IdempotencyRecordData
from order_service.main import build_order_service
from order_service.routers.dependencies import OrderServiceState
from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.clock import utc_now
from servicekit.database import create_engine, create_session_factory
from servicekit.tokens import StaticKeySource
from tests.support.backing import postgres_database
from tests.support.deployments import INTERNAL_TOKEN

# Long enough for dozens of rounds at the interval below on a loaded machine; a service that
# purged only at its start, or on the default interval, would keep the record past it.
PATIENCE_S = 30.0


def _record(user_id: uuid.UUID, key: str, expires_at: dt.datetime) -> IdempotencyRecordData:
    return IdempotencyRecordData(
        user_id=user_id,
        key=key,
        fingerprint="f",
        order_id=uuid.uuid4(),
        created_at=expires_at - dt.timedelta(hours=24),
        expires_at=expires_at,
    )


async def _add(url: str, record: IdempotencyRecordData) -> None:
    """Written as a client's keyed order would leave it, from outside the service."""
    engine = create_engine(url, application_name="test")
    try:
        async with SqlOrderUnitOfWork(create_session_factory(engine)) as uow:
            await uow.idempotency.add(record)
            await uow.commit()
    finally:
        await engine.dispose()


async def _exists(state: OrderServiceState, user_id: uuid.UUID, key: str) -> bool:
    async with state.new_uow(read_only=True) as uow:
        return await uow.idempotency.get(user_id, key) is not None


async def _until_gone(state: OrderServiceState, user_id: uuid.UUID, key: str) -> None:
    while True:
        if not await _exists(state, user_id, key):
            return
        await asyncio.sleep(0.1)


async def test_the_running_service_deletes_expired_keys_and_keeps_live_ones() -> None:
    async with postgres_database("purge") as url:
        settings = OrderSettings(
            database_url=url,
            internal_api_token=INTERNAL_TOKEN,
            idempotency_purge_interval_seconds=0.1,
        )
        async with build_order_service(
            settings, cache=InMemoryCache(), bus=InMemoryBus(), keys=StaticKeySource({})
        ) as state:
            # Written after the start, so only a later round of the service can remove it.
            await asyncio.sleep(0.3)
            user_id, now = uuid.uuid4(), utc_now()
            await _add(url, _record(user_id, "expired", now - dt.timedelta(hours=1)))
            await _add(url, _record(user_id, "live", now + dt.timedelta(hours=1)))
            async with asyncio.timeout(PATIENCE_S):
                await _until_gone(state, user_id, "expired")
            assert await _exists(state, user_id, "live")
