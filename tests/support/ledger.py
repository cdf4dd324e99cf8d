"""Nothing lost, nothing doubled: the order database read directly, against what clients saw.

Every order request of a fault test carries its own ``Idempotency-Key``, stored in the order's
own transaction, so the database says which request each order belongs to. A request whose
answer was lost (503, a dropped connection) may still have committed; retrying it with the same
key after recovery must then replay that order, not make a second one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.support.api import order_body
from tests.support.load import Outcome, send_order

# Keys of orders a fault test makes besides its load (warming up, probes): the ledger skips them.
OUTSIDE_LOAD = "outside-load-"


@dataclass(frozen=True)
class StoredOrder:
    id: str
    user_id: str
    key: str | None
    lines: int


@dataclass
class LedgerReport:
    requests: int
    created: int
    retried: int
    committed_despite_failure: int
    orders_checked: int


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def stored_orders(database_url: str, user_ids: Iterable[str]) -> list[StoredOrder]:
    """The orders of these users, each with its Idempotency-Key (None if it has none)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=5)
    try:
        rows = await conn.fetch(
            """
            SELECT o.id::text AS id, o.user_id::text AS user_id, r.key,
                   (SELECT count(*) FROM order_line l WHERE l.order_id = o.id) AS lines
            FROM customer_order o
            LEFT JOIN idempotency_record r ON r.order_id = o.id AND r.user_id = o.user_id
            WHERE o.user_id = ANY($1::uuid[]) AND coalesce(r.key, '') NOT LIKE $2
            """,
            list(user_ids),
            f"{OUTSIDE_LOAD}%",
        )
    finally:
        await conn.close()
    return [StoredOrder(r["id"], r["user_id"], r["key"], int(r["lines"])) for r in rows]


async def orphans(database_url: str) -> dict[str, int]:
    """Partial orders of any kind: lines without an order, an order without lines, a key
    record pointing at no order. All must be zero."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=5)
    try:
        return {
            "lines without order": await conn.fetchval(
                "SELECT count(*) FROM order_line l"
                " WHERE NOT EXISTS (SELECT 1 FROM customer_order o WHERE o.id = l.order_id)"
            ),
            "orders without lines": await conn.fetchval(
                "SELECT count(*) FROM customer_order o"
                " WHERE NOT EXISTS (SELECT 1 FROM order_line l WHERE l.order_id = o.id)"
            ),
            "keys without order": await conn.fetchval(
                "SELECT count(*) FROM idempotency_record r"
                " WHERE NOT EXISTS (SELECT 1 FROM customer_order o WHERE o.id = r.order_id)"
            ),
        }
    finally:
        await conn.close()


async def check_ledger(
    database_url: str, order_service_url: str, outcomes: Sequence[Outcome], *, lines: int = 2
) -> LedgerReport:
    """After recovery: every 201 is in the database exactly once; every request that failed is
    retried with its key (three at once) and ends as exactly one order; no other order, no
    partial order. Returns the numbers for the report."""
    assert outcomes, "no request was sent"
    users = {o.account.id for o in outcomes}
    created = [o for o in outcomes if o.created]
    failed = [o for o in outcomes if not o.created]

    before = await stored_orders(database_url, users)
    by_id = Counter(order.id for order in before)
    for outcome in created:
        assert by_id[outcome.order_id or ""] == 1, f"201 without its order: {outcome}"
    key_of = {order.id: order.key for order in before}
    for outcome in created:
        assert key_of[outcome.order_id or ""] == outcome.key, f"order under another key: {outcome}"

    # Each failed request, retried three times at once with the same key, as a client would.
    retried: list[Outcome] = []
    async with httpx.AsyncClient(base_url=order_service_url, timeout=20.0) as http:
        for outcome in failed:
            copies = [
                Outcome(outcome.account, outcome.key, f"{outcome.request_id}-r{i}", "retry")
                for i in range(3)
            ]
            await asyncio.gather(*(send_order(http, copy, _body(lines)) for copy in copies))
            retried.extend(copies)
            statuses = sorted(copy.label for copy in copies)
            assert all(s in {"201", "409"} for s in statuses), (outcome, statuses)
            ids = {copy.order_id for copy in copies if copy.created}
            assert len(ids) <= 1, f"two orders for one key: {outcome.key} {ids}"
            if not ids:
                # All three collided with each other: one more, alone, must settle it.
                last = Outcome(outcome.account, outcome.key, f"{outcome.request_id}-r9", "retry")
                await send_order(http, last, _body(lines))
                assert last.created, last
                retried.append(last)

    after = await stored_orders(database_url, users)
    sent_keys = {o.key for o in outcomes}
    per_key = Counter(order.key for order in after)
    assert all(order.key in sent_keys for order in after), "an order nobody asked for"
    assert all(order.lines == lines for order in after), "an order with missing lines"
    doubled = {key: n for key, n in per_key.items() if n != 1}
    assert not doubled, f"keys with more than one order: {doubled}"
    assert set(per_key) == sent_keys, "a request whose key has no order after its retry"
    # A failed request whose key already had an order had committed, its answer lost; its
    # retries replayed that very order (the one-order-per-key check above).
    committed_anyway = {o.key for o in failed} & {order.key for order in before}
    assert await orphans(database_url) == {
        "lines without order": 0,
        "orders without lines": 0,
        "keys without order": 0,
    }
    return LedgerReport(
        requests=len(outcomes),
        created=len(created),
        retried=len(failed),
        committed_despite_failure=len(committed_anyway),
        orders_checked=len(after),
    )


def _body(lines: int) -> dict[str, Any]:
    body = order_body()
    assert len(body["items"]) == lines
    return body
