"""The user service stopped under load: users whose entry is in the cache still order; users
with a cold cache get 503 with Retry-After (nobody answers on the bus, the HTTP fallback is
refused) and nothing is written for them. After it starts again, they order again."""

from __future__ import annotations

import pytest

from contracts import user_cache_key
from tests.faults.conftest import accounts
from tests.support.api import Api
from tests.support.distributed import DistributedStack
from tests.support.ledger import check_ledger, stored_orders
from tests.support.load import order_load


async def run_user_service_down(
    stack: DistributedStack, api: Api, *, users: int, per_phase: int, cycles: int
) -> None:
    warm = await accounts(api, users)
    cold = await accounts(api, users)
    cold_ids = {account.id for account in cold}
    async with order_load(
        stack.order_service.url,
        [*warm, *cold],
        max_seconds=30.0 * cycles,
        max_requests=2000 * cycles,
    ) as load:
        for _ in range(cycles):
            await load.run_phase("before", per_phase, status=201)
            await stack.user_service.stop()
            async with stack.redis.client() as client:
                await client.delete(*(user_cache_key(user_id) for user_id in cold_ids))
            # Requests sent while the key deletion raced with a verification are not counted.
            load.enter("cooling")
            await load.run_phase("down", per_phase)
            load.enter("restarting")
            await stack.user_service.start()
            await stack.wait_for_subscribers()
            await load.run_phase("after", per_phase, status=201)
    print("user service down:", load.report())
    down = [o for o in load.in_phase("down") if o.ended_in == "down"]
    assert any(o.account.id in cold_ids for o in down)
    assert any(o.account.id not in cold_ids for o in down)
    for outcome in load.outcomes:
        assert outcome.status in {201, 503}, f"unexpected outcome: {outcome}"
    for outcome in down:
        if outcome.account.id in cold_ids:
            assert outcome.status == 503, outcome
            assert outcome.retry_after is not None, outcome
            assert outcome.code == "user_verification_unavailable", outcome
        else:
            assert outcome.status == 201, outcome
    # Nothing was written for a 503 of a cold user (before any retry).
    refused = {o.key for o in down if o.status == 503}
    stored = await stored_orders(stack.order_database_url, cold_ids)
    assert not refused & {order.key for order in stored}
    report = await check_ledger(stack.order_database_url, stack.order_service.url, load.outcomes)
    print("user service down ledger:", report)


async def test_user_service_down_under_load(stack: DistributedStack, fault_api: Api) -> None:
    await run_user_service_down(stack, fault_api, users=3, per_phase=15, cycles=1)


@pytest.mark.soak
async def test_user_service_down_under_load_soak(stack: DistributedStack, fault_api: Api) -> None:
    await run_user_service_down(stack, fault_api, users=10, per_phase=150, cycles=5)
