"""The message bus port (fire-and-forget pub/sub), with an in-process twin and a Redis adapter.

Delivery is at most once and only to subscribers present at that moment, as with Redis
pub/sub; callers that need more must not rely on the bus alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.exceptions
from redis.asyncio import Redis

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


class _Dispatcher:
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
        self._dispatcher = _Dispatcher()

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._dispatcher.handlers[channel].append(handler)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self._dispatcher.drain()

    async def publish(self, channel: str, message: bytes) -> int:
        return self._dispatcher.dispatch(channel, message)


class RedisBus:
    """One pub/sub connection per process, re-established after any fault."""

    def __init__(
        self,
        client: Redis,
        *,
        poll_interval: float = 1.0,
        reconnect_delay: float = 0.2,
        max_reconnect_delay: float = 2.0,
    ) -> None:
        self._client = client
        self._dispatcher = _Dispatcher()
        self._poll_interval = poll_interval
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def subscribe(self, channel: str, handler: Handler) -> None:
        if self._listener is not None:
            raise RuntimeError("subscribe before start")
        self._dispatcher.handlers[channel].append(handler)

    async def start(self, ready_timeout: float = 2.0) -> None:
        """Start listening; wait (bounded) until subscribed, so no early reply is missed."""
        if not self._dispatcher.handlers:
            return
        self._listener = asyncio.create_task(self._listen(), name="redis-bus-listener")
        try:
            await asyncio.wait_for(self.subscribed.wait(), ready_timeout)
        except TimeoutError:
            log.warning("redis bus not subscribed yet; it keeps retrying in the background")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await self._dispatcher.drain()

    async def publish(self, channel: str, message: bytes) -> int:
        receivers: int = await self._client.publish(channel, message)
        return receivers

    async def _listen(self) -> None:
        delay = self._reconnect_delay
        channels = list(self._dispatcher.handlers)
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                self.subscribed.set()
                delay = self._reconnect_delay
                log.info("subscribed to %s", ", ".join(channels))
                while True:
                    message = await pubsub.get_message(timeout=self._poll_interval)
                    if message is None:
                        # Quiet channel: make sure the connection is still alive.
                        await pubsub.check_health()  # type: ignore[no-untyped-call]
                        continue
                    if message.get("type") == "message":
                        channel = message["channel"].decode()
                        self._dispatcher.dispatch(channel, message["data"])
            except (redis.exceptions.RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("redis bus lost its subscription (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
            finally:
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
