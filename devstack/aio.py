"""The face of ``devstack`` for callers inside an event loop: the same server objects, whose
waits (readiness, exit, stop) run in a worker thread so the loop keeps serving meanwhile.

Named as the blocking classes they wrap, as ``redis.asyncio.Redis`` is named as ``redis.Redis``.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Unpack

import redis.asyncio

from devstack import process, redis_server
from devstack.process import START_TIMEOUT, STOP_TIMEOUT


class ServerProcess:
    """A ``devstack.process.ServerProcess`` with awaitable waits."""

    def __init__(self, core: process.ServerProcess) -> None:
        self.core = core

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def port(self) -> int:
        return self.core.port

    @property
    def url(self) -> str:
        return self.core.url

    @property
    def env(self) -> dict[str, str]:
        return self.core.env

    @property
    def log_path(self) -> Path:
        return self.core.log_path

    @property
    def running(self) -> bool:
        return self.core.running

    @property
    def pid(self) -> int:
        """The pid of the last launch (the process may have ended since)."""
        return self.core.pid

    def launch(self) -> None:
        self.core.launch()

    def send(self, sig: signal.Signals) -> None:
        self.core.send(sig)

    async def wait_ready(self, within: float = START_TIMEOUT) -> None:
        await asyncio.to_thread(self.core.wait_ready, within)

    async def start(self, within: float = START_TIMEOUT) -> None:
        self.launch()
        await self.wait_ready(within)

    async def wait_exit(self, within: float = STOP_TIMEOUT) -> int | None:
        return await asyncio.to_thread(self.core.wait_exit, within)

    async def stop(self, within: float = STOP_TIMEOUT) -> int | None:
        return await asyncio.to_thread(self.core.stop, within)

    async def kill(self) -> None:
        await asyncio.to_thread(self.core.kill)


class RedisServer(ServerProcess):
    """A ``devstack.redis_server.RedisServer`` with awaitable waits."""

    core: redis_server.RedisServer

    def __init__(self, core: redis_server.RedisServer) -> None:
        super().__init__(core)
        self.core = core

    @classmethod
    def on_free_port(
        cls, workdir: Path, **options: Unpack[redis_server.RedisOptions]
    ) -> RedisServer:
        return cls(redis_server.RedisServer.on_free_port(workdir, **options))

    def client(self) -> redis.asyncio.Redis:
        return self.core.client()
