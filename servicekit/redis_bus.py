"""The message bus on Redis pub/sub: the distributed deployment's adapter of
``servicekit.bus.MessageBus``, speaking the protocol itself (``servicekit.resp``)."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.exceptions
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue
from redis.asyncio import Redis

from servicekit.bus import Dispatcher, Handler
from servicekit.faults import REDIS_FAULTS, fault_text
from servicekit.redis import FaultObserver, ignore_fault, unavailable
from servicekit.resp import (
    PipelinedClient,
    RedisAddress,
    Reply,
    RespProtocol,
    connect,
    encode_command,
)

log = logging.getLogger(__name__)


class RedisBus:
    """Redis pub/sub on two connections of its own: one subscribed, one publishing.

    Built from a redis-py client's address, credentials, timeouts and name; it speaks the
    protocol itself (``servicekit.resp``). The subscription is re-established after any
    fault; a quiet one is checked with a ``PING`` every ``poll_interval`` seconds.

    With a ``tracer``, each ``PUBLISH`` is a client span (the redis-py instrumentation cannot
    see these connections); ``on_fault`` hears of every Redis fault it meets."""

    def __init__(
        self,
        client: Redis,
        *,
        poll_interval: float = 1.0,
        reconnect_delay: float = 0.2,
        max_reconnect_delay: float = 2.0,
        tracer: Tracer | None = None,
        on_fault: FaultObserver | None = None,
    ) -> None:
        self._address = RedisAddress.of(client)
        self._tracer = tracer
        self._on_fault = on_fault or ignore_fault
        self._span_attributes: dict[str, AttributeValue] = {
            "db.system.name": "redis",
            "db.operation.name": "PUBLISH",
            "server.address": self._address.host,
            "server.port": self._address.port,
        }
        self._publisher = PipelinedClient(self._address)
        self._dispatcher = Dispatcher()
        self._poll_interval = poll_interval
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._listener: asyncio.Task[None] | None = None
        self._confirmed = 0
        self._pong = asyncio.Event()
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
            log.info(
                "redis bus at %s not subscribed yet; it keeps retrying in the background",
                self._address.label,
            )

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await self._publisher.close()
        await self._dispatcher.drain()

    async def publish(self, channel: str, message: bytes) -> int:
        if self._tracer is None:
            return await self._publish(channel, message)
        with self._tracer.start_as_current_span(
            "PUBLISH", kind=SpanKind.CLIENT, attributes=self._span_attributes
        ):
            return await self._publish(channel, message)

    async def _publish(self, channel: str, message: bytes) -> int:
        try:
            receivers = await self._publisher.call(b"PUBLISH", channel.encode(), message)
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            raise unavailable(self._address.label, exc) from exc
        if not isinstance(receivers, int):
            raise unavailable(self._address.label, f"PUBLISH answered {receivers!r}")
        return receivers

    def _on_push(self, push: Reply) -> None:
        if not isinstance(push, list) or len(push) < 2:
            return
        kind = push[0]
        if kind == b"message" and len(push) == 3:
            channel, data = push[1], push[2]
            if isinstance(channel, bytes) and isinstance(data, bytes):
                self._dispatcher.dispatch(channel.decode(), data)
        elif kind == b"subscribe":
            self._confirmed += 1
            if self._confirmed == len(self._dispatcher.handlers):
                self.subscribed.set()
        elif kind == b"pong":
            self._pong.set()

    async def _listen(self) -> None:
        delay = self._reconnect_delay
        channels = [channel.encode() for channel in self._dispatcher.handlers]
        # Said once when the subscription goes (or cannot be made at start) and once when it
        # is back, not at every attempt between: an outage is two lines in the log.
        lost_since: float | None = None
        ever_subscribed = False
        while True:
            connection: RespProtocol | None = None
            try:
                self._confirmed = 0
                connection = await connect(self._address, self._on_push)
                connection.send(encode_command(b"SUBSCRIBE", *channels))
                async with asyncio.timeout(self._address.timeout):
                    await self.subscribed.wait()
                delay = self._reconnect_delay
                if lost_since is not None:
                    log.warning(
                        "redis bus at %s: subscribed again to %s after %.1fs",
                        self._address.label,
                        ", ".join(self._dispatcher.handlers),
                        time.monotonic() - lost_since,
                    )
                    lost_since = None
                else:
                    log.info("subscribed to %s", ", ".join(self._dispatcher.handlers))
                ever_subscribed = True
                await self._watch(connection)
            except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
                self._on_fault(exc)
                self.subscribed.clear()
                if lost_since is None:
                    lost_since = time.monotonic()
                    log.warning(
                        "redis bus at %s %s (%s); retrying in the background until it is back",
                        self._address.label,
                        "lost its subscription" if ever_subscribed else "cannot subscribe",
                        fault_text(exc),
                    )
                else:
                    log.debug(
                        "redis bus at %s still unavailable: %s",
                        self._address.label,
                        fault_text(exc),
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
            finally:
                if connection is not None:
                    connection.close()

    async def _watch(self, connection: RespProtocol) -> None:
        """Return never; raise when the connection is lost or a quiet one stops answering."""
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(connection.lost), self._poll_interval)
            except TimeoutError:
                if time.monotonic() - connection.last_heard < self._poll_interval:
                    continue
                self._pong.clear()
                connection.send(encode_command(b"PING"))
                try:
                    await asyncio.wait_for(self._pong.wait(), self._address.timeout)
                except TimeoutError:
                    raise redis.exceptions.TimeoutError("no answer to PING") from None
                continue
            raise redis.exceptions.ConnectionError("the subscription connection closed")
