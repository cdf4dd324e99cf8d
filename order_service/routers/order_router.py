"""HTTP routes for orders: parse, call one service function, return a declared body."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from order_service.routers.dependencies import Authenticated
from order_service.schemas import OrderCreate, OrderPage, OrderRead, order_json, page_json
from order_service.services import order_service
from servicekit.errors import AppError
from servicekit.jsonbody import ExactJsonRoute
from servicekit.params import RequestParam
from servicekit.web import problem_responses

router = APIRouter(
    tags=["orders"], responses=problem_responses(401, 403), route_class=ExactJsonRoute
)

# Read by the busiest routes themselves, as FastAPI would read them (servicekit.params).
IDEMPOTENCY_KEY: RequestParam[str | None] = RequestParam(
    "idempotency_key",
    Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retry-safe creation: the same key and body replay the first answer",
        ),
    ],
    None,
)
LIMIT: RequestParam[int] = RequestParam("limit", Annotated[int, Query(ge=1, le=100)], 20)
CURSOR: RequestParam[str | None] = RequestParam(
    "cursor", Annotated[str | None, Query(min_length=1, max_length=200)], None
)
ORDER_ID: RequestParam[uuid.UUID] = RequestParam("order_id", Annotated[uuid.UUID, Path()])


# The created (or replayed) order is rendered by ``order_json``, the JSON of ``OrderRead``
# without building one; as for the reads, ``response_model`` is what the document says.
@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_order",
    response_model=OrderRead,
    responses=problem_responses(409),
    openapi_extra={"parameters": [IDEMPOTENCY_KEY.openapi]},
)
async def create_order(body: OrderCreate, caller: Authenticated, request: Request) -> Response:
    key = IDEMPOTENCY_KEY.read(request)  # one at most: a second is a 400 before any route
    state = caller.state
    try:
        placed = await order_service.place_order(
            state.new_uow(),
            state.users,
            state.writer,
            user_id=caller.user_id,
            currency=body.currency,
            lines=[
                order_service.LineInput(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price)
                for i in body.items
            ],
            idempotency_key=key,
            idempotency_ttl=dt.timedelta(hours=state.settings.idempotency_ttl_hours),
            session_epoch=caller.session_epoch,
        )
    except AppError as exc:
        state.metrics.refused(exc.code)
        raise
    headers = {"Location": f"/orders/{placed.order.id}"}
    if placed.replayed:
        state.metrics.replayed.inc()
        headers["Idempotent-Replayed"] = "true"
    else:
        state.metrics.created.inc()
    return Response(
        order_json(placed.order),
        status_code=status.HTTP_201_CREATED,
        headers=headers,
        media_type="application/json",
    )


# The reads answer with orders rendered already (``OrderViews[RenderedOrder]``), as they are:
# ``response_model`` is what the document says they are (tests/contract check that it holds).
@router.get(
    "/orders",
    operation_id="list_orders",
    response_model=OrderPage,
    openapi_extra={"parameters": [LIMIT.openapi, CURSOR.openapi]},
)
async def list_orders(caller: Authenticated, request: Request) -> Response:
    limit, cursor = LIMIT.read(request), CURSOR.read(request)
    state = caller.state
    page = await order_service.list_orders(
        state.views,
        state.users,
        user_id=caller.user_id,
        limit=limit,
        cursor=cursor,
        session_epoch=caller.session_epoch,
    )
    body = page_json((order.json for order in page.orders), page.next_cursor)
    return Response(body, media_type="application/json")


@router.get(
    "/orders/{order_id}",
    operation_id="read_order",
    response_model=OrderRead,
    responses=problem_responses(404),
    openapi_extra={"parameters": [ORDER_ID.openapi]},
)
async def read_order(caller: Authenticated, request: Request) -> Response:
    order_id = ORDER_ID.read(request)
    state = caller.state
    order = await order_service.get_order(
        state.views,
        state.users,
        user_id=caller.user_id,
        order_id=order_id,
        session_epoch=caller.session_epoch,
    )
    return Response(order.json, media_type="application/json")


@router.post(
    "/orders/{order_id}/cancel",
    operation_id="cancel_order",
    response_model=OrderRead,
    responses=problem_responses(404, 409),
)
async def cancel_order(order_id: uuid.UUID, caller: Authenticated) -> Response:
    state = caller.state
    order = await order_service.cancel_order(
        state.new_uow(),
        state.users,
        user_id=caller.user_id,
        order_id=order_id,
        session_epoch=caller.session_epoch,
    )
    return Response(order_json(order), media_type="application/json")
