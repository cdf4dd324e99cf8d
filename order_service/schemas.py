"""Request and response bodies of the Order Service. Money travels as decimal strings."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from order_service.domain import OrderData, format_money, line_total

MoneyOut = Annotated[Decimal, PlainSerializer(format_money, return_type=str)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


# Money comes in as a decimal string ("12.50": up to 8 integer digits without leading zeros,
# up to 4 decimals) or, as the API always took, a JSON number with at most 4 decimals. The
# document states both forms, so that nothing it allows is refused for its shape.
MONEY_PATTERN = r"(0|[1-9][0-9]{0,7})(\.[0-9]{1,4})?"


def _money_text(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a decimal string such as '12.50'")
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str) or re.fullmatch(MONEY_PATTERN, value) is None:
        raise ValueError("must be a decimal string such as '12.50', at most 4 decimals")
    return value


MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_money_text),
    Field(ge=0, max_digits=12, decimal_places=4, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^{MONEY_PATTERN}$", "examples": ["12.50"]},
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 99999999.9999,
                    "multipleOf": 0.0001,
                },
            ]
        },
        mode="validation",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderItemCreate(_Body):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    unit_price: MoneyIn


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


def order_read(order: OrderData) -> OrderRead:
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
