"""Group commit for new orders: orders placed at the same moment share one transaction, with
or without an Idempotency-Key.

A request hands its order over and waits until the transaction that holds it has committed,
so every 201 still stands for a durable order. While one batch is being written the next
ones queue up; at low load a batch is one order and nothing waits longer than before.

A keyed order's record is written first, in the same transaction, by one INSERT ... ON
CONFLICT for the whole batch: the database's unique key says which keys are free (or held
only by an expired record, then replaced), and only those keys' orders are inserted. A key
already in flight in this process is refused before it reaches the queue; one in flight in
another process makes the INSERT wait for that transaction, then counts as taken if it
committed.

A batch is one transaction: it commits whole or not at all. When it fails for a reason that
could be one order's own (not a lost connection), its orders are retried one by one, so a
single bad row cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from dataclasses import dataclass, field

from opentelemetry import trace
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.core.metrics import OrderMetrics
from order_service.domain import IdempotencyRecordData, OrderData
from order_service.repositories.idempotency_repository import (
    CLAIM_ARRAYS,
    claim_keys,
    record_arrays,
)
from order_service.repositories.order_repository import (
    INSERT_ORDERS_WITH_LINES,
    insert_orders,
    order_arrays,
)
from servicekit.database import database_unavailable
from servicekit.errors import DependencyUnavailable
from servicekit.faults import is_dependency_fault
from servicekit.postgres import AsyncpgStatement, PostgresLookups

log = logging.getLogger(__name__)

KeyOf = tuple[uuid.UUID, str]


@dataclass(slots=True)
class _Pending:
    order: OrderData
    record: IdempotencyRecordData | None
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # The placing request's context, kept only when batches are traced and the request's
    # span records (the sampler chose it).
    context: contextvars.Context | None = None


class SqlOrderWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 128,
        metrics: OrderMetrics | None = None,
        traced: bool = False,
    ) -> None:
        """``traced``: a batch's statements are traced in the trace of the first order it
        carries (tracing on), when that order's trace is sampled; otherwise they run in no
        request's context at all."""
        self._engine = engine
        self._traced = traced
        self._batch_size = (metrics or OrderMetrics.off()).batch_size
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._in_flight: set[KeyOf] = set()

    async def write(self, order: OrderData, record: IdempotencyRecordData | None = None) -> bool:
        """True once ``order`` is committed; False if ``record``'s key is taken (nothing
        written); raises what its transaction raised."""
        if record is not None:
            key = (record.user_id, record.key)
            if key in self._in_flight:
                return False
            self._in_flight.add(key)
        traced = self._traced and trace.get_current_span().is_recording()
        pending = _Pending(order, record, context=contextvars.copy_context() if traced else None)
        self._queue.append(pending)
        if self._writer is None:
            # In a context of its own: the task outlives the request that happened to start
            # it and writes other requests' orders, so it must not carry that request's id
            # or trace.
            self._writer = asyncio.create_task(
                self._drain(), name="order-writer", context=contextvars.Context()
            )
        return await pending.done

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._batch_size.observe(len(batch))
                await self._write_batch(batch)
        finally:
            self._writer = None

    async def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            context = batch[0].context
            if context is None:
                won = await self._insert(batch)
            else:
                won = await asyncio.create_task(self._insert(batch), context=context)
        except Exception as exc:
            if len(batch) == 1 or is_dependency_fault(exc):
                failure = _translated(exc, self._engine.url)
                for pending in batch:
                    self._settle(pending, failure)
                return
            log.warning("a batch of %d orders failed (%r); writing one by one", len(batch), exc)
            for pending in batch:
                await self._write_batch([pending])
            return
        for pending in batch:
            self._settle(pending, pending.record is None or _key(pending.record) in won)

    async def _insert(self, batch: list[_Pending]) -> set[KeyOf]:
        records = _records(batch)
        async with self._engine.begin() as conn:
            won = await claim_keys(conn, records) if records else set()
            orders = _winners(batch, won)
            if orders:
                await insert_orders(conn, orders)
        return won

    def _settle(self, pending: _Pending, outcome: bool | BaseException) -> None:
        if pending.record is not None:
            self._in_flight.discard(_key(pending.record))
        if pending.done.done():  # the caller went away
            return
        if isinstance(outcome, BaseException):
            pending.done.set_exception(outcome)
        else:
            pending.done.set_result(outcome)


class PostgresOrderWriter(SqlOrderWriter):
    """On Postgres: straight on asyncpg, the orders and their lines one statement for the
    whole batch (``INSERT_ORDERS_WITH_LINES``), where the engine costs a greenlet, a checkout
    and its processing of every row. A batch without keys is that one statement alone, atomic
    on its own; a batch with keys claims them first, in the same transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        postgres: PostgresLookups,
        *,
        max_batch: int = 128,
        metrics: OrderMetrics | None = None,
        traced: bool = False,
    ) -> None:
        super().__init__(engine, max_batch=max_batch, metrics=metrics, traced=traced)
        self._postgres = postgres

    async def _insert(self, batch: list[_Pending]) -> set[KeyOf]:
        records = _records(batch)
        if not records:
            orders = [pending.order for pending in batch]
            await self._postgres.fetch(_PLACE.sql, *_PLACE.args(**order_arrays(orders)))
            return set()
        async with self._postgres.transaction() as transaction:
            claimed = await transaction.fetch(_CLAIM.sql, *_CLAIM.args(**record_arrays(records)))
            won = {(row[0], row[1]) for row in claimed}
            orders = _winners(batch, won)
            if orders:
                await transaction.fetch(_PLACE.sql, *_PLACE.args(**order_arrays(orders)))
        return won


_CLAIM = AsyncpgStatement(CLAIM_ARRAYS)
_PLACE = AsyncpgStatement(INSERT_ORDERS_WITH_LINES)


def _records(batch: list[_Pending]) -> list[IdempotencyRecordData]:
    """The batch's records in a stable order: two transactions then wait for each other's
    keys in the same order, never in a cycle."""
    return sorted(
        (p.record for p in batch if p.record is not None), key=lambda r: (r.user_id, r.key)
    )


def _winners(batch: list[_Pending], won: set[KeyOf]) -> list[OrderData]:
    """The orders to insert: those without a key, and those whose key was won."""
    return [p.order for p in batch if p.record is None or _key(p.record) in won]


def _key(record: IdempotencyRecordData) -> KeyOf:
    return (record.user_id, record.key)


def _translated(exc: Exception, url: URL) -> BaseException:
    if is_dependency_fault(exc) and not isinstance(exc, DependencyUnavailable):
        failure = database_unavailable(url, exc)
        failure.__cause__ = exc
        return failure
    return exc
