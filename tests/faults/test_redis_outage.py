"""Redis stopped in the middle of a stream of order creations, then started again (empty, as
after a restart without persistence). Meanwhile each request succeeds over the HTTP fallback or
gets 503 with Retry-After, never a 500; afterwards both services use Redis again by themselves:
they subscribe again, a cache miss goes over pub/sub again, the user service writes the cache."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts import (
    USER_VERIFICATION_RESPONSE_CHANNEL,
    VERIFY_USER_CHANNEL,
    CachedUser,
    UserVerification,
    VerifyUser,
    user_cache_key,
)
from tests.faults.conftest import accounts, logged_request_ids
from tests.support.api import Account, Api, order_body
from tests.support.distributed import DistributedStack
from tests.support.ledger import OUTSIDE_LOAD, check_ledger
from tests.support.load import OrderLoad, order_load

PATIENCE = 15.0


def fallback_ids(stack: DistributedStack) -> set[str]:
    """Request ids the user service's internal verification endpoint served (the fallback)."""
    return logged_request_ids(stack.user_service.log_path, "/internal/users/")


async def verified_over_pubsub(stack: DistributedStack, api: Api, account: Account) -> None:
    """With the user's cache entry gone, one order: a raw subscriber sees its VerifyUser and the
    user service's reply, the fallback is not used, and the user service caches the user."""
    async with stack.redis.client() as client:
        pubsub = client.pubsub()
        await pubsub.subscribe(VERIFY_USER_CHANNEL, USER_VERIFICATION_RESPONSE_CHANNEL)
        try:
            await client.delete(user_cache_key(account.id))
            request_id = f"pubsub-{uuid.uuid4().hex}"
            response = await api.orders.post(
                "/orders",
                json=order_body(),
                headers={
                    **account.auth,
                    "X-Request-ID": request_id,
                    "Idempotency-Key": f"{OUTSIDE_LOAD}{request_id}",
                },
            )
            assert response.status_code == 201, response.text
            asked: VerifyUser | None = None
            answered: UserVerification | None = None
            async with asyncio.timeout(PATIENCE):
                while asked is None or answered is None:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is None:
                        continue
                    channel = message["channel"].decode()
                    if channel == VERIFY_USER_CHANNEL:
                        request = VerifyUser.model_validate_json(message["data"])
                        if str(request.user_id) == account.id:
                            asked = request
                    elif asked is not None:
                        reply = UserVerification.model_validate_json(message["data"])
                        if reply.request_id == asked.request_id:
                            answered = reply
            assert answered.exists
            assert answered.active
            assert asked.trace_id == request_id
            assert request_id not in fallback_ids(stack)
            cached = await client.get(user_cache_key(account.id))
            assert cached is not None, "the user service did not cache the user again"
            assert str(CachedUser.model_validate_json(cached).id) == account.id
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


def check_outcomes(load: OrderLoad, stack: DistributedStack) -> int:
    """No 500, no hung request; 503s carry Retry-After; every order created while Redis was
    down was verified over the HTTP fallback. Returns how many were."""
    for outcome in load.outcomes:
        assert outcome.status in {201, 503}, f"unexpected outcome: {outcome}"
        if outcome.status == 503:
            assert outcome.retry_after is not None, outcome
    served = fallback_ids(stack)
    # Sent after Redis had stopped, answered before it was started again.
    during = [o for o in load.in_phase("outage") if o.ended_in == "outage" and o.created]
    assert during, "no order was created while Redis was down"
    missing = [o.request_id for o in during if o.request_id not in served]
    assert not missing, f"created without the HTTP fallback while Redis was down: {missing}"
    return len(during)


async def run_redis_outage(
    stack: DistributedStack, api: Api, *, users: int, per_phase: int, cycles: int
) -> None:
    team = await accounts(api, users)
    async with order_load(
        stack.order_service.url, team, max_seconds=30.0 * cycles, max_requests=2000 * cycles
    ) as load:
        for _ in range(cycles):
            await load.run_phase("before", per_phase, status=201)
            await stack.stop_redis()
            await load.run_phase("outage", per_phase)
            # Requests from here on may find Redis up or down: they are checked, not counted.
            load.enter("restarting")
            # start_redis waits until every service has subscribed again, on its own.
            await stack.start_redis()
            await load.run_phase("after", per_phase, status=201)
    fallbacks = check_outcomes(load, stack)
    print("redis outage:", load.report(), "created over the HTTP fallback:", fallbacks)
    await verified_over_pubsub(stack, api, team[0])
    report = await check_ledger(stack.order_database_url, stack.order_service.url, load.outcomes)
    print("redis outage ledger:", report)


async def test_redis_outage_under_load(stack: DistributedStack, fault_api: Api) -> None:
    await run_redis_outage(stack, fault_api, users=4, per_phase=15, cycles=1)


@pytest.mark.soak
async def test_redis_outage_under_load_soak(stack: DistributedStack, fault_api: Api) -> None:
    await run_redis_outage(stack, fault_api, users=20, per_phase=150, cycles=5)
