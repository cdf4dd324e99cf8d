"""The app skeleton's lifespan: the collector is tuned while an app serves, restored after."""

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from servicekit.web import COLLECTOR, CollectorTuning, create_base_app

TUNED = (20_000, 20, 20)


async def test_a_serving_app_has_its_startup_heap_frozen_and_the_collector_tuned() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {}

    app = create_base_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1024)
    before = COLLECTOR.serving  # other tests' apps may be serving too
    async with app.router.lifespan_context(app):
        assert COLLECTOR.serving == before + 1
        assert gc.get_threshold() == TUNED
        assert gc.get_freeze_count() > 0
    assert COLLECTOR.serving == before


def test_the_collector_is_restored_when_the_last_app_stops() -> None:
    """Apps may overlap (tests run several): the first to start tunes, the last to stop
    restores, whatever the order."""
    original = gc.get_threshold()
    gc.set_threshold(701, 11, 11)
    try:
        tuning = CollectorTuning()
        tuning.serving_started()
        tuning.serving_started()
        assert gc.get_threshold() == TUNED
        tuning.serving_stopped()
        assert gc.get_threshold() == TUNED
        tuning.serving_stopped()
        assert gc.get_threshold() == (701, 11, 11)
        assert gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(*original)
