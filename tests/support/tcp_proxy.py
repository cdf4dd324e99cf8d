"""A TCP proxy of our own between the services and Postgres, to fake database faults.

The machine's Postgres is shared, so fault tests never restart it. The services are pointed at
this proxy instead, and the proxy plays the faults:

- ``cut()``: every proxied connection is closed and new ones are refused (the listening socket
  is closed), as while a database restarts;
- ``stall()``: new connections are accepted and nothing is forwarded either way, on new or
  existing connections, as with a hung server or a network black hole;
- ``restore()``: back to forwarding; data held during a stall is delivered then.

It runs on the caller's event loop; ``connections_seen`` counts accepted client connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(eq=False)
class _Pipe:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = port
        self.connections_seen = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        # Set while forwarding; cleared during a stall (every pump waits on it).
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        # Keep the port across cut/restore: the services' URLs name it.
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for pipe in list(self._pipes):
            pipe.close()
        self._pipes.clear()
        self._flowing.set()

    async def cut(self) -> None:
        """Refuse new connections and close the open ones: a database that went away."""
        await self.close()

    def stall(self) -> None:
        """Accept, but forward nothing: a database that hangs."""
        self._flowing.clear()

    async def restore(self) -> None:
        """Forward again (listening again after a cut, on the same port)."""
        self._flowing.set()
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            # Accepted by the kernel just before a cut, handed to us after it: refuse it too.
            writer.close()
            return
        self.connections_seen += 1
        pipe = _Pipe(client=writer)
        self._pipes.add(pipe)
        try:
            await self._flowing.wait()
            if pipe not in self._pipes:
                return  # cut while it waited
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            pipe.upstream = up_writer
            pipe.tasks = [
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            ]
            # Either direction ending ends the connection, as a TCP proxy should.
            await asyncio.wait(pipe.tasks, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            pipe.close()
            self._pipes.discard(pipe)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                await self._flowing.wait()
                data = await source.read(CHUNK)
                if not data:
                    return
                # Read before a stall began: hold it until the stall ends.
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()


@contextlib.asynccontextmanager
async def tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
