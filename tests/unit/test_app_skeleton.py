"""The app skeleton's lifespan: the collector is tuned while serving, and restored after."""

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
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    async with app.router.lifespan_context(app):
        serving, serving_thresholds = gc.get_freeze_count(), gc.get_threshold()
    assert seen["during_startup"] == before
    assert serving > before
    assert serving_thresholds[0] > thresholds[0]
    assert (gc.get_freeze_count(), gc.get_threshold()) == (before, thresholds)
