"""The one assembly of a service's own app, shared by both services' composition roots.

A service hands over what is its own (its settings' app options, its routers, the function
that builds its typed state) and what it shares with others (the bus it starts, the checks
that join ``/ready``, what runs beside it, what closes last). The lifespan enters them in
order and leaves them in reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.bus import MessageBus
from servicekit.database import database_check
from servicekit.telemetry import Telemetry
from servicekit.web import Check, create_base_app, health_router, include_api


class SharedParts(Protocol):
    """What a service's ``Adapters`` offers the assembly."""

    @property
    def bus(self) -> MessageBus: ...

    @property
    def checks(self) -> Mapping[str, Check]: ...

    @property
    def beside(self) -> Callable[[], contextlib.AbstractAsyncContextManager[object]] | None: ...

    @property
    def close(self) -> Callable[[], Awaitable[None]] | None: ...


def assemble_service_app(
    *,
    name: str,
    state_key: str,
    routers: Sequence[APIRouter],
    engine: AsyncEngine,
    shared: SharedParts,
    telemetry: Telemetry,
    build: Callable[[], contextlib.AbstractAsyncContextManager[object]],
    **app_options: Any,
) -> FastAPI:
    """The app of one service: ``build()`` makes its state once the engine, the shared parts
    and what runs beside it are up; the bus starts last, once everything has subscribed."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(telemetry.close)
            stack.push_async_callback(engine.dispose)
            if shared.close is not None:
                stack.push_async_callback(shared.close)
            if shared.beside is not None:
                await stack.enter_async_context(shared.beside())
            state = await stack.enter_async_context(build())
            await shared.bus.start()
            stack.push_async_callback(shared.bus.close)
            yield {state_key: state}

    app = create_base_app(lifespan=lifespan, telemetry=telemetry, **app_options)
    include_api(
        app, [*routers, health_router(name, {"database": database_check(engine), **shared.checks})]
    )
    return app
