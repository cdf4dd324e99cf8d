"""Opaque cursors for newest-first pages: the (created_at, id) of the last order returned."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid

from order_service.errors import InvalidCursor

_VERSION = "v1"


def encode_cursor(created_at: dt.datetime, order_id: uuid.UUID) -> str:
    raw = f"{_VERSION}|{created_at.astimezone(dt.UTC).isoformat()}|{order_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
        version, created_at, order_id = raw.split("|")
        if version != _VERSION:
            raise ValueError(version)
        when = dt.datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when.astimezone(dt.UTC), uuid.UUID(order_id)
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        raise InvalidCursor() from None
