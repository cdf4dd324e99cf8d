"""Postgres away under load, through a proxy of our own (the machine's server is shared):
cut (connections closed, new ones refused, as during a restart) and stalled (accepted, nothing
answered, as a hung server). Requests meanwhile get 503 with Retry-After, never 500, and every
one ends within the client timeout; afterwards the services heal without a restart."""

from __future__ import annotations

import pytest

from tests.faults.conftest import accounts
from tests.support.api import Api
from tests.support.distributed import DistributedStack
from tests.support.ledger import check_ledger
from tests.support.load import OrderLoad, order_load
from tests.support.tcp_proxy import TcpProxy


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
