"""SIGTERM to the order service under load. uvicorn stops accepting, lets the requests it has
accepted finish, and exits; a restart takes over. Every request either got an answer or a
connection error (refused, or closed before the server read it); every 201 is in the database,
and each failed request, retried with its key, ends as exactly one order.

To be sure requests are inside the app when the signal lands, the database is stalled just
before it (they wait on it) and restored just after: those requests must then complete."""

from __future__ import annotations

import asyncio
import signal

import pytest

from devstack import tail
from tests.faults.conftest import accounts
from tests.support.api import Api
from tests.support.distributed import DistributedStack
from tests.support.ledger import check_ledger
from tests.support.load import order_load
from tests.support.tcp_proxy import TcpProxy

# Transport errors that mean the server never took the request in.
NOT_ACCEPTED = {"ConnectError", "RemoteProtocolError", "ReadError"}


async def run_sigterm(
    stack: DistributedStack,
    api: Api,
    proxy: TcpProxy,
    *,
    users: int,
    per_phase: int,
    cycles: int,
) -> None:
    team = await accounts(api, users)
    service = stack.order_service
    async with order_load(
        service.url, team, max_seconds=30.0 * cycles, max_requests=2000 * cycles
    ) as load:
        for _ in range(cycles):
            await load.run_phase("before", per_phase, status=201)
            proxy.stall()
            # Let requests reach the app and wait there on the database (a pause, not a check).
            await asyncio.sleep(0.3)
            load.enter("signalled")
            service.send(signal.SIGTERM)
            await asyncio.sleep(0.3)
            await proxy.restore()
            # uvicorn re-raises the signal once its graceful shutdown is done.
            assert await service.wait_exit() in {0, -signal.SIGTERM}
            assert "Application shutdown complete" in tail(service.log_path, 5)
            load.enter("restarting")
            await service.start()
            await load.run_phase("after", per_phase, status=201)
    print("sigterm:", load.report())
    in_flight = [o for o in load.in_phase("before") if o.ended_in != "before"]
    completed = [o for o in in_flight if o.created]
    print(f"sigterm: {len(in_flight)} in flight at the signal, {len(completed)} completed 201")
    assert completed, "no request in flight at the signal completed"
    for outcome in load.outcomes:
        assert not outcome.timed_out, f"a request hung: {outcome}"
        assert outcome.status in {201, 503, None}, f"unexpected outcome: {outcome}"
        if outcome.status is None:
            assert outcome.error in NOT_ACCEPTED, outcome
    report = await check_ledger(stack.order_database_url, service.url, load.outcomes)
    print("sigterm ledger:", report)


async def test_sigterm_under_load(
    stack: DistributedStack, fault_api: Api, postgres_proxy: TcpProxy
) -> None:
    await run_sigterm(stack, fault_api, postgres_proxy, users=4, per_phase=15, cycles=1)


@pytest.mark.soak
async def test_sigterm_under_load_soak(
    stack: DistributedStack, fault_api: Api, postgres_proxy: TcpProxy
) -> None:
    await run_sigterm(stack, fault_api, postgres_proxy, users=10, per_phase=150, cycles=5)
