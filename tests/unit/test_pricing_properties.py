"""Money arithmetic, by property: exact Decimals, never a float, formatting that round-trips,
and orders rendered as the API shows them."""

import datetime as dt
import uuid
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from order_service.domain import (
    CANCELLED,
    PENDING,
    SCALE,
    OrderData,
    OrderLineData,
    format_money,
    line_total,
    order_total,
)
from order_service.schemas import order_json, order_read

# What the API accepts: unit_price >= 0 with at most 12 digits, 4 of them decimals.
prices = st.decimals(
    min_value=Decimal(0),
    max_value=Decimal("99999999.9999"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
)
quantities = st.integers(min_value=1, max_value=10_000)
lines = st.lists(st.tuples(quantities, prices), min_size=1, max_size=100)


@given(quantities, prices)
def test_line_total_is_the_exact_product(quantity: int, price: Decimal) -> None:
    total = line_total(quantity, price)
    assert isinstance(total, Decimal)
    assert total == price * quantity
    assert total.as_tuple().exponent == -4


@given(lines)
def test_order_total_is_the_exact_sum_of_line_totals(items: list[tuple[int, Decimal]]) -> None:
    total = order_total(items)
    assert isinstance(total, Decimal)
    assert total == sum((price * quantity for quantity, price in items), Decimal(0))
    assert order_total(reversed(items)) == total


@given(lines)
def test_order_total_of_a_split_order_adds_up(items: list[tuple[int, Decimal]]) -> None:
    half = len(items) // 2
    assert order_total(items[:half]) + order_total(items[half:]) == order_total(items)


@given(prices)
def test_format_money_round_trips_exactly(amount: Decimal) -> None:
    text = format_money(amount)
    assert Decimal(text) == amount
    whole, dot, fraction = text.partition(".")
    assert dot == "."
    assert whole.isdigit()
    assert fraction.isdigit()
    assert 2 <= len(fraction) <= 4
    assert len(fraction) == 2 or not fraction.endswith("0")


@given(lines)
def test_formatted_totals_round_trip_exactly(items: list[tuple[int, Decimal]]) -> None:
    total = order_total(items)
    assert Decimal(format_money(total)) == total
    assert "e" not in format_money(total).lower()


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**12)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=0, max_value=10**8)
)
def test_format_money_reads_any_decimal_as_its_four_place_rounding(amount: Decimal) -> None:
    """Any exponent, scientific notation included, formats as its value rounded to four
    places would: the plain text of a four-place amount is taken as it is, nothing else."""
    rounded = amount.quantize(SCALE)
    text = format_money(amount)
    assert Decimal(text) == rounded
    assert "E" not in text
    assert format_money(rounded) == text
    assert format_money(Decimal(f"{rounded:f}")) == text


def test_scale_is_four_places() -> None:
    assert Decimal("0.0001") == SCALE
    assert format_money(Decimal("12.5")) == "12.50"
    assert format_money(Decimal("1.2E+5")) == "120000.00"
    assert format_money(Decimal("1.5E-3")) == "0.0015"
    assert format_money(Decimal("0.00005")) == "0.00"
    assert format_money(Decimal("7")) == "7.00"


skus = st.text(min_size=1, max_size=64)
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)


@given(
    st.lists(st.tuples(skus, quantities, prices), min_size=1, max_size=5),
    times,
    times,
    st.sampled_from(["EUR", "JPY", "KWD"]),
    st.sampled_from([PENDING, CANCELLED]),
)
def test_order_json_is_the_json_of_order_read(
    items: list[tuple[str, int, Decimal]],
    created_at: dt.datetime,
    updated_at: dt.datetime,
    currency: str,
    status: str,
) -> None:
    """The orders the service answers with are rendered without a model: byte for byte what
    ``OrderRead`` would write, for any text, amount and time (with or without a fraction)."""
    order = OrderData(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=status,
        currency=currency,
        total=order_total((quantity, price) for _, quantity, price in items),
        created_at=created_at,
        updated_at=updated_at,
        lines=tuple(
            OrderLineData(position=n, sku=sku, quantity=quantity, unit_price=price)
            for n, (sku, quantity, price) in enumerate(items)
        ),
    )
    assert order_json(order) == order_read(order).model_dump_json()
