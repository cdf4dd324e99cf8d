"""The message bus port (fire-and-forget pub/sub), with its in-process twin (the Redis
adapter: ``servicekit.redis_bus``).

Delivery is at most once and only to subscribers present at that moment, as with Redis
pub/sub; callers that need more must not rely on the bus alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[None]]


class MessageBus(Protocol):
    def subscribe(self, channel: str, handler: Handler) -> None:
        """Register a handler; call before ``start``."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, message: bytes) -> int:
        """Send a message; returns how many subscribers received it (0: nobody listens)."""
        ...


class Dispatcher:
    """Runs each handler call as its own task and keeps a reference until it ends."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Handler]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, channel: str, message: bytes) -> int:
        handlers = self.handlers.get(channel, [])
        for handler in handlers:
            task = asyncio.create_task(_run(handler, channel, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(handlers)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _run(handler: Handler, channel: str, message: bytes) -> None:
    try:
        await handler(message)
    except Exception:
        log.exception("handler for channel %s failed", channel)


class InMemoryBus:
    """Delivers to handlers in this process, asynchronously, like a broker would."""

    def __init__(self) -> None:
        self._dispatcher = Dispatcher()

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._dispatcher.handlers[channel].append(handler)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self._dispatcher.drain()

    async def publish(self, channel: str, message: bytes) -> int:
        return self._dispatcher.dispatch(channel, message)
