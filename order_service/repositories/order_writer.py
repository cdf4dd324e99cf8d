"""Group commit for new orders: orders placed at the same moment share one transaction.

A request hands its order over and waits until the transaction that holds it has committed,
so every 201 still stands for a durable order. While one batch is being written the next
ones queue up; at low load a batch is one order and nothing waits longer than before. Under
load, one BEGIN/INSERT/INSERT/COMMIT carries dozens of orders instead of one.

A batch is one transaction: it commits whole or not at all. When it fails for a reason that
could be one order's own (not a lost connection), its orders are retried one by one, so a
single bad row cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.models import OrderData
from order_service.repositories.order_repository import insert_orders
from servicekit.faults import is_dependency_fault

log = logging.getLogger(__name__)

Pending = tuple[OrderData, asyncio.Future[None]]


class OrderWriter:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = 128) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, order: OrderData) -> None:
        """Returns once ``order`` is committed; raises what its transaction raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((order, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="order-writer")
        await done

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._writer = None

    async def _write_batch(self, batch: list[Pending]) -> None:
        try:
            await self._insert([order for order, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or is_dependency_fault(exc):
                for _, done in batch:
                    _settle(done, exc)
                return
            log.warning("a batch of %d orders failed (%r); writing one by one", len(batch), exc)
            for pending in batch:
                await self._write_batch([pending])
            return
        for _, done in batch:
            _settle(done, None)

    async def _insert(self, orders: list[OrderData]) -> None:
        async with self._engine.begin() as conn:
            await insert_orders(conn, orders)


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():  # the caller went away; the outcome is still logged by the caller's peers
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
