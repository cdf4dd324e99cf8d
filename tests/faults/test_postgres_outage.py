"""Postgres away under load, through a proxy of our own (the machine's server is shared):
cut (connections closed, new ones refused, as during a restart) and stalled (accepted, nothing
answered, as a hung server). Requests meanwhile get 503 with Retry-After, never 500, and every
one ends within the client timeout; afterwards the services heal without a restart."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from contracts import INTERNAL_VERIFICATION_PATH
from tests.faults.conftest import accounts
from tests.support.api import Api
from tests.support.deployments import INTERNAL_TOKEN
from tests.support.distributed import ADMIN_DSN, DistributedStack
from tests.support.ledger import check_ledger
from tests.support.load import OrderLoad, order_load
from tests.support.tcp_proxy import TcpProxy

# A bound for failures only: no assertion depends on how fast anything is.
PATIENCE = 30.0


def only_created_or_503(load: OrderLoad) -> None:
    for outcome in load.outcomes:
        assert not outcome.timed_out, f"a request hung: {outcome}"
        assert outcome.status in {201, 503}, f"unexpected outcome: {outcome}"
        if outcome.status == 503:
            assert outcome.retry_after is not None, outcome
            assert outcome.code == "service_unavailable", outcome


@pytest.mark.parametrize(("fault", "failures"), [("cut", 10), ("stall", 6)])
async def test_postgres_outage_under_load_gives_503_and_heals(
    stack: DistributedStack, fault_api: Api, postgres_proxy: TcpProxy, fault: str, failures: int
) -> None:
    """``cut``: connections closed and new ones refused, as during a restart. ``stall``:
    connections accepted and nothing forwarded, as with a hung server."""
    users = await accounts(fault_api, 4)
    async with order_load(stack.order_service.url, users) as load:
        await load.wait_for("20 orders before", lambda run: run.ended("before", 201) >= 20)
        load.enter("outage")
        if fault == "cut":
            await postgres_proxy.cut()
        else:
            postgres_proxy.stall()
        await load.wait_for(
            f"{failures} answers of 503 during the outage",
            lambda run: run.ended("outage", 503) >= failures,
        )
        load.enter("after")
        await postgres_proxy.restore()
        await load.wait_for("20 orders after", lambda run: run.ended("after", 201) >= 20)
    print(f"postgres {fault}:", load.report())
    only_created_or_503(load)
    report = await check_ledger(stack.order_database_url, stack.order_service.url, load.outcomes)
    print(f"postgres {fault} ledger:", report)


async def listener_checked(stack: DistributedStack) -> None:
    """Until the user service's change feed has run a health check, which it does only
    while live (its LISTEN in place and a trigger to send): from then on it remembers."""
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        async with asyncio.timeout(PATIENCE):
            while not await connection.fetchval(  # noqa: ASYNC110 (polling another process)
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                " AND application_name LIKE '%-listener' AND query = 'SELECT 1'",
                stack.user_database,
            ):
                await asyncio.sleep(0.1)
    finally:
        await connection.close()


@pytest.mark.parametrize("fault", ["cut", "stall"])
async def test_user_verification_is_not_answered_from_memory_while_postgres_is_away(
    stack: DistributedStack, fault_api: Api, postgres_proxy: TcpProxy, fault: str
) -> None:
    """The user service answers ``verify_user`` from a memory of user states only while its
    change feed (a LISTEN connection through the same proxy) is live. Cut, the feed is lost
    at once; stalled, its check finds out within a bound. Then the answer is 503 (the
    database cannot be read), never 500 and never the remembered one for good; afterwards
    the answers come back by themselves."""
    account = (await accounts(fault_api, 1))[0]
    await listener_checked(stack)
    path = INTERNAL_VERIFICATION_PATH.format(user_id=account.id)
    headers = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    for _ in range(2):  # the second answer comes from memory
        answer = await fault_api.users.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["active"] is True
    if fault == "cut":
        await postgres_proxy.cut()
    else:
        postgres_proxy.stall()
    statuses: list[int] = []
    async with asyncio.timeout(PATIENCE):
        while not statuses or statuses[-1] != 503:
            statuses.append((await fault_api.users.get(path, headers=headers)).status_code)
    assert set(statuses) <= {200, 503}, statuses
    await postgres_proxy.restore()
    after = 0
    async with asyncio.timeout(PATIENCE):
        while (answer := await fault_api.users.get(path, headers=headers)).status_code != 200:
            assert answer.status_code == 503, answer.text
            after += 1
            await asyncio.sleep(0.1)
    assert answer.json() == {
        "user_id": account.id,
        "exists": True,
        "active": True,
        "session_epoch": 0,
    }
    print(
        f"verification, postgres {fault}: {statuses.count(200)} x 200 then 503;"
        f" {after} x 503 after restore, then 200"
    )
