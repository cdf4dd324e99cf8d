"""The pagination cursor, by property: encode/decode round-trips; any text decodes or fails
with InvalidCursor (a 422), never with anything else (a 500)."""

import base64
import contextlib
import datetime as dt
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from order_service.errors import InvalidCursor
from order_service.services.pagination import decode_cursor, encode_cursor

zones = st.builds(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
moments = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=zones,
)


@given(moments, st.uuids())
def test_cursor_round_trips(created_at: dt.datetime, order_id: uuid.UUID) -> None:
    cursor = encode_cursor(created_at, order_id)
    assert cursor.isascii()
    assert "=" not in cursor
    when, decoded_id = decode_cursor(cursor)
    assert when == created_at
    assert when.tzinfo == dt.UTC
    assert decoded_id == order_id


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@given(st.text(max_size=300))
@example("")
@example("é")
@example(_b64("v1|0001-01-01T00:00:00+01:00|" + str(uuid.UUID(int=0))))
@example(_b64("v1|9999-12-31T23:59:59-01:00|" + str(uuid.UUID(int=0))))
@example(_b64("v1|2024-01-01T00:00:00|" + str(uuid.UUID(int=0))))
@example(_b64("v2|2024-01-01T00:00:00+00:00|" + str(uuid.UUID(int=0))))
@example(_b64("v1|2024-01-01T00:00:00+00:00|not-a-uuid"))
@example(base64.urlsafe_b64encode(b"\xff\xfe|").decode())
def test_decoding_any_text_fails_only_with_invalid_cursor(text: str) -> None:
    try:
        when, _ = decode_cursor(text)
    except InvalidCursor:
        return
    assert when.tzinfo == dt.UTC


@given(st.binary(max_size=200))
def test_decoding_any_base64_payload_fails_only_with_invalid_cursor(payload: bytes) -> None:
    text = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    with contextlib.suppress(InvalidCursor):
        decode_cursor(text)


def test_a_tampered_cursor_is_invalid() -> None:
    cursor = encode_cursor(dt.datetime(2024, 5, 1, tzinfo=dt.UTC), uuid.uuid4())
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor[:-3] + "!!!")
