"""Request and response bodies of the Order Service. Money travels as decimal strings."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any

from iso4217 import Currency as Iso4217
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictInt,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import to_json

from order_service.domain import OrderData, format_money, line_total
from servicekit.text import Code

MoneyOut = Annotated[Decimal, PlainSerializer(format_money, return_type=str)]
Sku = Annotated[str, Field(min_length=1, max_length=64), Code()]

# Currencies of the ISO 4217 list (maintained upstream, the iso4217 package) that have minor
# units: funds, precious metals and the testing and "no currency" codes have none, and no
# price is given in them.
MINOR_UNITS: dict[str, int] = {
    currency.code: currency.exponent for currency in Iso4217 if currency.exponent is not None
}
CURRENCY_CODES = sorted(MINOR_UNITS)


def _known_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        raise ValueError("must be an ISO 4217 currency code with minor units, such as EUR")
    return code


Currency = Annotated[
    str,
    Field(
        description="ISO 4217 code, e.g. EUR; prices have at most its minor units of decimals",
        json_schema_extra={"enum": CURRENCY_CODES},
    ),
    AfterValidator(_known_currency),
]

# Money comes in as a decimal string ("12.50": up to 8 integer digits without leading zeros,
# then decimals) or as an exact JSON number (read as a Decimal: servicekit.jsonbody). Either
# has at most as many decimals as the order's currency has minor units (JPY none, EUR two,
# KWD three), and never more than four. The document states both forms per currency.
MAX_DECIMALS = 4
MONEY_MAX = Decimal("99999999.9999")


def money_pattern(decimals: int) -> str:
    fraction = rf"(\.[0-9]{{1,{decimals}}})?" if decimals else ""
    return f"^(0|[1-9][0-9]{{0,7}}){fraction}$"


def _money(value: object) -> Decimal:
    if isinstance(value, str):
        if re.fullmatch(money_pattern(MAX_DECIMALS), value) is None:
            raise ValueError("must be a decimal string such as '12.50', at most 4 decimals")
        return Decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, Decimal) and value.is_finite():
        amount = value
    else:
        raise ValueError("must be a decimal string such as '12.50' or an exact JSON number")
    if amount.is_signed():
        raise ValueError("must not be negative (nor negative zero)")
    if amount > MONEY_MAX:
        raise ValueError(f"must be at most {MONEY_MAX}")
    if amount != amount.quantize(Decimal(1).scaleb(-MAX_DECIMALS), rounding=ROUND_DOWN):
        raise ValueError("must have at most 4 decimals")
    return amount.quantize(Decimal(1).scaleb(-MAX_DECIMALS))


def money_schema(decimals: int) -> dict[str, Any]:
    step = Decimal(1).scaleb(-decimals)
    return {
        "anyOf": [
            {"type": "string", "pattern": money_pattern(decimals), "examples": ["12.50"]},
            {
                "type": "number",
                "minimum": 0,
                "maximum": float(MONEY_MAX.quantize(step, rounding=ROUND_DOWN)),
                "multipleOf": float(step) if decimals else 1,
            },
        ]
    }


MoneyIn = Annotated[
    Decimal,
    PlainValidator(_money, json_schema_input_type=str),
    WithJsonSchema(money_schema(MAX_DECIMALS), mode="validation"),
]


def _fits_currency(unit_price: object, decimals: int) -> bool:
    """As sent: a string by its written decimals, a number by its value (as JSON Schema's
    multipleOf counts it). What is no price at all is left to the item's own validation."""
    try:
        _money(unit_price)
    except ValueError:
        return True
    if isinstance(unit_price, str):
        return re.fullmatch(money_pattern(decimals), unit_price) is not None
    if isinstance(unit_price, int | Decimal) and not isinstance(unit_price, bool):
        amount = Decimal(unit_price)
        step = Decimal(1).scaleb(-decimals)
        return amount.is_finite() and amount == amount.quantize(step, rounding=ROUND_DOWN)
    return True  # not money at all: the item's own validation says so


def _minor_units_rule() -> dict[str, Any]:
    """The document's statement of the per-currency precision: for each number of minor
    units, if the currency is one of those, every unit_price is money of that precision."""
    by_decimals: dict[int, list[str]] = {}
    for code, decimals in MINOR_UNITS.items():
        by_decimals.setdefault(decimals, []).append(code)
    return {
        "allOf": [
            {
                "if": {
                    "required": ["currency"],
                    "properties": {"currency": {"enum": sorted(codes)}},
                },
                "then": {
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"unit_price": money_schema(decimals)},
                            },
                        }
                    }
                },
            }
            for decimals, codes in sorted(by_decimals.items())
            if decimals < MAX_DECIMALS
        ]
    }


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderItemCreate(_Body):
    sku: Sku
    # A JSON integer only: not true, "3", 2.0 or 1e2.
    quantity: Annotated[StrictInt, Field(ge=1, le=10_000)]
    unit_price: MoneyIn


class OrderCreate(_Body):
    model_config = ConfigDict(json_schema_extra=_minor_units_rule())

    currency: Currency
    items: Annotated[list[OrderItemCreate], Field(min_length=1, max_length=100)]

    @model_validator(mode="before")
    @classmethod
    def _prices_fit_currency(cls, data: Any) -> Any:
        """Checked on the body as sent, so that "1.50" in JPY is refused like "1.5"."""
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            return data
        currency = data.get("currency")
        decimals = MINOR_UNITS.get(currency) if isinstance(currency, str) else None
        if decimals is None:
            return data  # the currency's own validation says what is wrong
        for index, item in enumerate(data["items"]):
            if isinstance(item, dict) and not _fits_currency(item.get("unit_price"), decimals):
                raise ValueError(
                    f"items[{index}].unit_price: {currency} prices have at most {decimals} decimals"
                )
        return data


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
    """The order as the model: what ``order_json`` is held to."""
    return OrderRead.model_validate(_order_fields(order, _as_is))


def order_json(order: OrderData) -> str:
    """The order as JSON, as ``OrderRead`` shows it, without building one: its amounts
    formatted here, and its ids and times by pydantic's own serializer (``to_json``), as the
    model would (tests/unit/test_pricing_properties.py holds the two byte-equal)."""
    return to_json(_order_fields(order, format_money)).decode()


def page_json(orders: Iterable[str], next_cursor: str | None) -> bytes:
    """An ``OrderPage`` of orders already rendered as ``OrderRead`` JSON (``order_json``, or
    Postgres: order_service.adapters.order_reads), without parsing them again."""
    cursor = json.dumps(next_cursor)
    return f'{{"items":[{",".join(orders)}],"next_cursor":{cursor}}}'.encode()


def _order_fields(order: OrderData, money: Callable[[Decimal], Any]) -> dict[str, Any]:
    """``OrderRead``'s fields of ``order``, each amount as ``money`` gives it."""
    return {
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "currency": order.currency,
        "items": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": money(line.unit_price),
                "line_total": money(line_total(line.quantity, line.unit_price)),
            }
            for line in order.lines
        ],
        "total": money(order.total),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _as_is(amount: Decimal) -> Decimal:
    return amount
