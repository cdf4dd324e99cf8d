"""The order service's plain data and pure rules: orders, their statuses, exact money, the
Idempotency-Key record, and a user's standing. No I/O, no database, no web framework."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

PENDING = "pending"
CANCELLED = "cancelled"

# Money: Decimals with at most four decimal places.
SCALE = Decimal("0.0001")


def line_total(quantity: int, unit_price: Decimal) -> Decimal:
    return (unit_price * quantity).quantize(SCALE)


def order_total(lines: Iterable[tuple[int, Decimal]]) -> Decimal:
    return sum((line_total(q, p) for q, p in lines), Decimal(0)).quantize(SCALE)


def format_money(amount: Decimal) -> str:
    """Plain notation, at least two decimals, no trailing zeros past them: 12.50, 0.1235."""
    # Amounts read from the database and line totals have four decimals already, and then
    # str() is the plain text with four decimals: a page of orders formats a hundred amounts.
    text = str(amount)
    if text[-5:-4] != "." or "E" in text:
        text = f"{amount.quantize(SCALE):f}"  # exactly four decimals
    if text.endswith("00"):
        return text[:-2]
    if text.endswith("0"):
        return text[:-1]
    return text


# An order as plain data: a new one (written with Core INSERTs) and one read to be shown
# (read with one Core SELECT). Neither is tracked by a session: building ORM instances
# (instrumented attributes, identity map, a collection for the lines) cost more than the
# rest of the request's own work.
@dataclass(frozen=True, slots=True)
class OrderLineData:
    position: int
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class OrderData:
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    currency: str
    total: Decimal
    created_at: dt.datetime
    updated_at: dt.datetime
    lines: tuple[OrderLineData, ...]


class RenderedOrder(NamedTuple):
    """An order as the API shows it (``OrderRead``'s JSON), with its cursor's parts. On
    Postgres the database renders it: a page then costs the service no object per order,
    line or amount (docs/benchmarks.md, "Orders rendered by Postgres")."""

    created_at: dt.datetime
    id: uuid.UUID
    json: str


@dataclass(frozen=True, slots=True)
class LineInput:
    sku: str
    quantity: int
    unit_price: Decimal


def new_order(
    *, user_id: uuid.UUID, currency: str, lines: Sequence[LineInput], now: dt.datetime
) -> OrderData:
    return OrderData(
        id=uuid.uuid4(),
        user_id=user_id,
        status=PENDING,
        currency=currency,
        total=order_total((line.quantity, line.unit_price) for line in lines),
        created_at=now,
        updated_at=now,
        lines=tuple(
            OrderLineData(
                position=position, sku=line.sku, quantity=line.quantity, unit_price=line.unit_price
            )
            for position, line in enumerate(lines)
        ),
    )


def fingerprint(currency: str, lines: Sequence[LineInput]) -> str:
    """The same order, however its JSON was spelled, has the same fingerprint."""
    canonical = json.dumps(
        {
            "currency": currency,
            "items": [[line.sku, line.quantity, format_money(line.unit_price)] for line in lines],
        },
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IdempotencyRecordData:
    """An ``Idempotency-Key`` seen from a user: which order it made, from which body, and
    until when it is remembered. Written in the same commit as its order."""

    user_id: uuid.UUID
    key: str
    fingerprint: str
    order_id: uuid.UUID
    created_at: dt.datetime
    expires_at: dt.datetime

    def is_live(self, now: dt.datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class UserStanding:
    """A user as the order service sees one: known, still active, and who said so."""

    exists: bool
    active: bool
    source: str
    # Raised by every password change and deactivation: access tokens of a lower epoch
    # belong to an ended session.
    session_epoch: int = 0

    @property
    def may_act(self) -> bool:
        return self.exists and self.active
