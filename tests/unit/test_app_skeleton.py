"""The app skeleton: its lifespan tunes the collector while an app serves and restores it
after; the API's routes are tried before the routes the app was made with."""

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from starlette.routing import Match

from servicekit.web import COLLECTOR, CollectorTuning, create_base_app, include_api

TUNED = (20_000, 20, 20)


@contextlib.asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {}


def _app() -> FastAPI:
    return create_base_app(title="t", version="1", lifespan=_lifespan, max_body_bytes=1024)


async def test_a_serving_app_has_its_startup_heap_frozen_and_the_collector_tuned() -> None:
    app = _app()
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


async def test_the_api_is_tried_first_and_documented_in_the_order_given() -> None:
    app = _app()
    made_with = list(app.router.routes)  # the docs' routes and /metrics'
    first, second = APIRouter(), APIRouter()
    first.add_api_route("/zebras", lambda: {"kind": "zebra"})
    second.add_api_route("/ants", lambda: {"kind": "ant"})

    include_api(app, [first, second])

    assert app.router.routes[-len(made_with) :] == made_with
    request = {"type": "http", "method": "GET", "path": "/zebras", "root_path": ""}
    assert app.router.routes[0].matches(request)[0] is Match.FULL
    assert list(app.openapi()["paths"]) == ["/zebras", "/ants"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/ants")).json() == {"kind": "ant"}
        assert (await client.get("/docs")).status_code == 200


async def test_routers_tried_first_are_tried_first_and_documented_where_given() -> None:
    app = _app()
    made_with = list(app.router.routes)
    quiet, busy, last = APIRouter(), APIRouter(), APIRouter()
    quiet.add_api_route("/zebras", lambda: {"kind": "zebra"})
    busy.add_api_route("/ants", lambda: {"kind": "ant"})
    busy.add_api_route("/ants/{name}", lambda name: {"kind": name})
    last.add_api_route("/owls", lambda: {"kind": "owl"})

    include_api(app, [quiet, busy, last], tried_first=[busy])

    request = {"type": "http", "method": "GET", "path": "/ants/bob", "root_path": ""}
    assert app.router.routes[0].matches(request)[0] is Match.FULL
    assert app.router.routes[-len(made_with) :] == made_with
    assert list(app.openapi()["paths"]) == ["/zebras", "/ants", "/ants/{name}", "/owls"]
    # Again: the second time FastAPI answers from its cached document.
    assert list(app.openapi()["paths"]) == ["/zebras", "/ants", "/ants/{name}", "/owls"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/zebras")).json() == {"kind": "zebra"}
        assert (await client.get("/ants/bob")).json() == {"kind": "bob"}
        document = (await client.get("/openapi.json")).json()
        assert list(document["paths"]) == ["/zebras", "/ants", "/ants/{name}", "/owls"]
