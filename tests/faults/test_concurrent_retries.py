"""Retries of one keyed order, many at once, under load, on two order-service replicas over
one real Postgres: each key ends as exactly one order. Every copy is answered 201 (the order,
first or replayed) or 409 (the first still in flight), never a 5xx; the background load of
keyed orders is accounted for by the ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from tests.faults.conftest import accounts
from tests.support.api import Api, order_body
from tests.support.distributed import DistributedStack
from tests.support.ledger import check_ledger, stored_orders
from tests.support.load import Outcome, order_load, send_order

COPIES = 8  # of each keyed request, sent at once, alternating between the replicas
ROUNDS = 3


async def test_concurrent_retries_of_one_key_make_one_order_under_load(
    stack: DistributedStack, fault_api: Api
) -> None:
    users = await accounts(fault_api, 6)
    second = await stack.add_order_service()
    try:
        await stack.wait_for_subscribers()
        replicas = [stack.order_services[0].url, second.url]
        retried: list[Outcome] = []
        async with (
            order_load(stack.order_service.url, users[:2], concurrency=6) as load,
            httpx.AsyncClient(base_url=replicas[0], timeout=20.0) as first_http,
            httpx.AsyncClient(base_url=replicas[1], timeout=20.0) as second_http,
        ):
            await load.wait_for(
                "10 orders of background load", lambda r: r.ended("before", 201) >= 10
            )
            for round_ in range(ROUNDS):
                burst: list[tuple[httpx.AsyncClient, Outcome]] = []
                for account in users[2:]:
                    key = f"retry-{round_}-{uuid.uuid4().hex}"
                    for copy in range(COPIES):
                        http = first_http if copy % 2 == 0 else second_http
                        burst.append(
                            (http, Outcome(account, key, f"{key}-{copy}", f"round-{round_}"))
                        )
                await asyncio.gather(*(send_order(h, o, order_body()) for h, o in burst))
                retried += [o for _, o in burst]
            await load.wait_for("10 more orders", lambda r: r.ended("before", 201) >= 20)

        for outcome in retried:
            assert outcome.status in {201, 409}, outcome
            if outcome.status == 409:
                assert outcome.code == "idempotency_key_in_use", outcome
        by_key: dict[str, set[str]] = {}
        for outcome in retried:
            if outcome.created:
                assert outcome.order_id is not None
                by_key.setdefault(outcome.key, set()).add(outcome.order_id)
        sent = {o.key for o in retried}
        assert set(by_key) == sent, "a key whose copies were all refused"
        assert all(len(ids) == 1 for ids in by_key.values()), by_key
        # Of the copies that got the order, all but the one that made it were replays.
        for key in sent:
            created = [o for o in retried if o.key == key and o.created]
            assert sum(not o.replayed for o in created) == 1, created

        stored = await stored_orders(stack.order_database_url, {a.id for a in users[2:]})
        per_key = Counter(order.key for order in stored if order.key in sent)
        assert per_key == dict.fromkeys(sent, 1)
        assert {order.id for order in stored if order.key in sent} == {
            next(iter(ids)) for ids in by_key.values()
        }
        print("concurrent retries:", Counter(o.label for o in retried), load.report())
        report = await check_ledger(stack.order_database_url, replicas[0], load.outcomes)
        print("concurrent retries, background ledger:", report)
    finally:
        await stack.remove(second)
