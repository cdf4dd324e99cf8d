"""Housekeeping: the deletions a service runs by itself, again and again while it runs, so
that a table holds what may still be asked for and not everything that ever was.

Each round is short transactions of at most a batch each: the table's writers never wait for
a whole purge. A round that fails (the database is down) is logged and the next one tries
again; every replica runs its own rounds, and two replicas' rounds only delete the same rows
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)

U = TypeVar("U", bound=UnitOfWork)


async def purge_in_batches(uow: U, purge: Callable[[U, int], Awaitable[int]], *, batch: int) -> int:
    """``purge(uow, batch)``, each call in a transaction of its own, until one deletes fewer
    than ``batch`` rows (then nothing was left over). Returns how many rows went in all."""
    purged = 0
    while True:
        async with uow:
            count = await purge(uow, batch)
            await uow.commit()
        purged += count
        if count < batch:
            return purged


@contextlib.asynccontextmanager
async def repeated(
    purge: Callable[[], Awaitable[int]], *, every_seconds: float, what: str
) -> AsyncIterator[None]:
    """``purge()`` at once and then every ``every_seconds`` while the block runs; ``what``
    names the rows it deletes, in the log."""
    task = asyncio.create_task(_rounds(purge, every_seconds, what), name=f"purge {what}")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _rounds(purge: Callable[[], Awaitable[int]], every_seconds: float, what: str) -> None:
    while True:
        try:
            purged = await purge()
            if purged:
                log.info("purged %d %s", purged, what)
        except Exception as exc:  # an outage must not end the rounds
            log.warning("purge of %s failed: %r", what, exc)
        await asyncio.sleep(every_seconds)
