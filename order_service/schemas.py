"""Request and response bodies of the Order Service. Money travels as decimal strings."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from order_service.models import Order
from order_service.services.pricing import format_money, line_total

MoneyOut = Annotated[Decimal, PlainSerializer(format_money, return_type=str)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderItemCreate(_Body):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    unit_price: Annotated[
        Decimal, Field(ge=0, max_digits=12, decimal_places=4, allow_inf_nan=False)
    ]


class OrderCreate(_Body):
    currency: Currency
    items: Annotated[list[OrderItemCreate], Field(min_length=1, max_length=100)]


class OrderItemRead(BaseModel):
    sku: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut


class OrderRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    status: str = Field(examples=["pending", "cancelled"])
    currency: str
    items: list[OrderItemRead]
    total: MoneyOut
    created_at: dt.datetime
    updated_at: dt.datetime


class OrderPage(BaseModel):
    items: list[OrderRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


def order_read(order: Order) -> OrderRead:
    return OrderRead(
        id=order.id,
        user_id=order.user_id,
        status=order.status,
        currency=order.currency,
        items=[
            OrderItemRead(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line_total(line.quantity, line.unit_price),
            )
            for line in order.lines
        ],
        total=order.total,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )
