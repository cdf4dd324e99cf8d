"""The time of day, in UTC: the one clock that services and adapters read."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
