"""Just enough of the Redis protocol (RESP2) for the bus: pipelined commands and a subscriber.

The bus sends two commands, ``PUBLISH`` and ``SUBSCRIBE``, and reads one kind of push. Through
redis-py's pooled client and its pub/sub reader, a request and reply over the bus took 2.6
round trips of a plain ``GET``; over these protocols, 1.3 (docs/benchmarks.md). Everything
else stays on redis-py.

Faults are redis-py's exception types, so callers handle one family: a refused or lost
connection is ``redis.exceptions.ConnectionError``, a silent server ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.connection import RedisSSLContext, SSLConnection

Reply: TypeAlias = "bytes | int | redis.exceptions.ResponseError | list[Reply] | None"


class _Incomplete(Exception):
    """The buffer ends inside a reply; wait for more bytes."""


def encode_command(*parts: bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    chunks = [b"*%d\r\n" % len(parts)]
    for part in parts:
        chunks.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(chunks)


def parse_reply(buffer: bytes, start: int) -> tuple[Reply, int]:
    """The reply beginning at ``start`` and where the next one begins.

    Raises ``_Incomplete`` if the buffer ends first, ``ValueError`` on bytes that are not
    RESP2 (the connection is then beyond repair)."""
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        raise _Incomplete
    kind = buffer[start]
    header = buffer[start + 1 : line_end]
    after = line_end + 2
    if kind == 0x24:  # $ bulk string
        size = int(header)
        if size < 0:
            return None, after
        end = after + size
        if len(buffer) < end + 2:
            raise _Incomplete
        return buffer[after:end], end + 2
    if kind == 0x2A:  # * array
        count = int(header)
        if count < 0:
            return None, after
        items: list[Reply] = []
        for _ in range(count):
            item, after = parse_reply(buffer, after)
            items.append(item)
        return items, after
    if kind == 0x3A:  # : integer
        return int(header), after
    if kind == 0x2B:  # + simple string
        return header, after
    if kind == 0x2D:  # - error
        return redis.exceptions.ResponseError(header.decode("utf-8", "replace")), after
    raise ValueError(f"not a RESP2 reply: {buffer[start : start + 16]!r}")


def split_replies(buffer: bytes) -> tuple[list[Reply], bytes]:
    """The complete replies at the start of ``buffer``, and the bytes of an incomplete one."""
    replies: list[Reply] = []
    position = 0
    try:
        while position < len(buffer):
            reply, position = parse_reply(buffer, position)
            replies.append(reply)
    except _Incomplete:
        pass
    return replies, buffer[position:]


class RespProtocol(asyncio.Protocol):
    """One connection: writes what it is given, hands every complete reply to ``on_reply``."""

    def __init__(self, on_reply: Callable[[Reply], None]) -> None:
        self.on_reply = on_reply
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_heard = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        try:
            replies, self._buffer = split_replies(self._buffer + data if self._buffer else data)
        except ValueError:
            self.close()
            return
        for reply in replies:
            self.on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    @property
    def is_open(self) -> bool:
        return (
            self._transport is not None
            and not self._transport.is_closing()
            and not self.lost.done()
        )

    def send(self, data: bytes) -> None:
        if not self.is_open:
            raise redis.exceptions.ConnectionError("the Redis connection is closed")
        assert self._transport is not None
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        if not self.lost.done():
            self.lost.set_result(None)


@dataclass(frozen=True)
class RedisAddress:
    """Where and how to connect, taken from a redis-py client so there is one configuration."""

    host: str
    port: int
    name: str | None
    connect_timeout: float
    timeout: float
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    # Set when the client speaks TLS: the context its own connections use.
    tls: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def of(cls, client: Redis) -> RedisAddress:
        options: dict[str, Any] = client.connection_pool.connection_kwargs
        if "path" in options:
            raise ValueError("the bus needs a TCP address, not a unix socket")
        timeout = options.get("socket_timeout") or 5.0
        return cls(
            host=options.get("host", "localhost"),
            port=int(options.get("port", 6379)),
            name=options.get("client_name"),
            connect_timeout=options.get("socket_connect_timeout") or timeout,
            timeout=timeout,
            username=options.get("username"),
            password=options.get("password"),
            tls=tls_context_of(client),
        )

    @property
    def label(self) -> str:
        """``host:port``, for messages: never the credentials."""
        return f"{self.host}:{self.port}"

    def handshake(self) -> list[bytes]:
        """The commands that open a connection, each answered by one reply."""
        commands = []
        if self.password is not None:
            credentials = [self.username.encode()] if self.username else []
            commands.append(encode_command(b"AUTH", *credentials, self.password.encode()))
        if self.name:
            commands.append(encode_command(b"CLIENT", b"SETNAME", self.name.encode()))
        return commands


def tls_context_of(client: Redis) -> ssl.SSLContext | None:
    """The TLS context of a redis-py client's connections, or None if it speaks plain TCP:
    built by redis-py's own builder from the client's own options, so that both clients
    check the server the same way."""
    pool = client.connection_pool
    if not issubclass(pool.connection_class, SSLConnection):
        return None
    options: dict[str, Any] = pool.connection_kwargs
    return RedisSSLContext(
        keyfile=options.get("ssl_keyfile"),
        certfile=options.get("ssl_certfile"),
        cert_reqs=options.get("ssl_cert_reqs", "required"),
        ca_certs=options.get("ssl_ca_certs"),
        ca_data=options.get("ssl_ca_data"),
        ca_path=options.get("ssl_ca_path"),
        check_hostname=options.get("ssl_check_hostname", True),
        min_version=options.get("ssl_min_version"),
        ciphers=options.get("ssl_ciphers"),
        password=options.get("ssl_password"),
    ).get()


async def connect(address: RedisAddress, on_reply: Callable[[Reply], None]) -> RespProtocol:
    """A connection past its handshake; every later reply goes to ``on_reply``."""
    loop = asyncio.get_running_loop()
    handshake: collections.deque[asyncio.Future[Reply]] = collections.deque()
    try:
        async with asyncio.timeout(address.connect_timeout):
            _, protocol = await loop.create_connection(
                lambda: RespProtocol(lambda reply: _answer(handshake, reply)),
                address.host,
                address.port,
                ssl=address.tls,
                server_hostname=address.host if address.tls is not None else None,
            )
    except (OSError, TimeoutError) as exc:
        raise redis.exceptions.ConnectionError(
            f"cannot connect to Redis at {address.host}:{address.port}: {exc!r}"
        ) from exc
    try:
        commands = address.handshake()
        protocol.send(b"".join(commands))
        # Registered after sending, so nothing is left waiting if that fails; no reply can
        # arrive before the next await.
        replies = [loop.create_future() for _ in commands]
        handshake.extend(replies)
        protocol.lost.add_done_callback(lambda _: _fail_all(handshake))
        async with asyncio.timeout(address.timeout):
            answers = await asyncio.gather(*replies)
    except TimeoutError:
        protocol.close()
        raise redis.exceptions.TimeoutError("no answer to the Redis handshake") from None
    except BaseException:
        protocol.close()
        raise
    for answer in answers:
        if isinstance(answer, redis.exceptions.ResponseError):
            protocol.close()
            refused = str(answer).startswith(("WRONGPASS", "NOAUTH", "NOPERM"))
            kind = redis.exceptions.AuthenticationError if refused else type(answer)
            raise kind(f"redis at {address.label} refused the handshake: {answer}")
    protocol.on_reply = on_reply
    return protocol


class PipelinedClient:
    """Commands on one connection, each awaited on its own, replies matched in order.

    Opened on first use and again after a loss; a command unanswered within the timeout
    closes the connection (a silent server), which fails every command still waiting. A
    caller that is cancelled leaves its place in line, so later replies still match."""

    def __init__(self, address: RedisAddress) -> None:
        self._address = address
        self._protocol: RespProtocol | None = None
        self._waiting: collections.deque[asyncio.Future[Reply]] = collections.deque()
        self._opening = asyncio.Lock()

    async def call(self, *parts: bytes) -> Reply:
        protocol = self._protocol
        if protocol is None or not protocol.is_open:
            protocol = await self._open()
        protocol.send(encode_command(*parts))
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append(reply)
        try:
            async with asyncio.timeout(self._address.timeout):
                answer = await reply
        except TimeoutError:
            protocol.close()
            raise redis.exceptions.TimeoutError("no reply from Redis in time") from None
        if isinstance(answer, redis.exceptions.ResponseError):
            raise answer
        return answer

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None

    async def _open(self) -> RespProtocol:
        async with self._opening:
            if self._protocol is not None and self._protocol.is_open:
                return self._protocol
            waiting: collections.deque[asyncio.Future[Reply]] = collections.deque()
            protocol = await connect(self._address, lambda reply: _answer(waiting, reply))
            protocol.lost.add_done_callback(lambda _: _fail_all(waiting))
            self._waiting = waiting
            self._protocol = protocol
            return protocol


def _answer(waiting: collections.deque[asyncio.Future[Reply]], reply: Reply) -> None:
    if not waiting:
        return  # nothing asked: not a reply to us (cannot happen on a sane server)
    future = waiting.popleft()
    if not future.done():
        future.set_result(reply)


def _fail_all(waiting: collections.deque[asyncio.Future[Reply]]) -> None:
    while waiting:
        future = waiting.popleft()
        if not future.done():
            future.set_exception(redis.exceptions.ConnectionError("lost the Redis connection"))
