"""The app skeleton's lifespan: the startup heap is frozen while serving, released after."""

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from servicekit.web import create_base_app


async def test_the_startup_heap_is_frozen_while_serving_and_released_at_shutdown() -> None:
    seen: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        seen["during_startup"] = gc.get_freeze_count()
        yield {}

    app = create_base_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1024)
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        serving = gc.get_freeze_count()
    assert seen["during_startup"] == before
    assert serving > before
    assert gc.get_freeze_count() == before
