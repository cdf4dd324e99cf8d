"""Exact money arithmetic. Amounts are Decimals with at most four decimal places."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

SCALE = Decimal("0.0001")


def line_total(quantity: int, unit_price: Decimal) -> Decimal:
    return (unit_price * quantity).quantize(SCALE)


def order_total(lines: Iterable[tuple[int, Decimal]]) -> Decimal:
    return sum((line_total(q, p) for q, p in lines), Decimal(0)).quantize(SCALE)


def format_money(amount: Decimal) -> str:
    """Plain notation, at least two decimals, no trailing zeros past them: 12.50, 0.1235."""
    text = f"{amount.quantize(SCALE):f}"  # exactly four decimals
    if text.endswith("00"):
        return text[:-2]
    if text.endswith("0"):
        return text[:-1]
    return text
