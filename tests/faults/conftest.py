"""Fixtures of the fault tests: one distributed stack whose services reach Postgres through a
fault-injecting TCP proxy (the machine's Postgres is shared and is never restarted), and, after
every test, every part put back (Redis, proxy, services) so the next test starts whole.

Soak variants carry the ``soak`` marker, deselected by default (``-m "not soak"`` in the pytest
options); ``pytest -m soak tests/faults`` runs them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devstack import postgres_address
from tests.support.api import Account, Api
from tests.support.deployments import INTERNAL_TOKEN, Deployment
from tests.support.distributed import (
    ADMIN_DSN,
    DistributedStack,
    distributed_stack,
)
from tests.support.ledger import OUTSIDE_LOAD
from tests.support.tcp_proxy import TcpProxy, tcp_proxy


@pytest.fixture(scope="session")
async def postgres_proxy() -> AsyncIterator[TcpProxy]:
    async with tcp_proxy(*postgres_address(ADMIN_DSN)) as proxy:
        yield proxy


@pytest.fixture(scope="session")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_proxy: TcpProxy
) -> AsyncIterator[DistributedStack]:
    async with distributed_stack(
        tmp_path_factory.mktemp("faults-stack"),
        internal_token=INTERNAL_TOKEN,
        database_via=postgres_proxy.address,
        # Access logs carry request ids: they show which path verified each request.
        # Tighter database bounds than the defaults (3 s, 10 s), so a stalled database costs
        # the suite seconds, not tens of seconds; the tests show requests end within them.
        extra_env={"LOG_LEVEL": "INFO", "DB_CONNECT_TIMEOUT": "1", "DB_STATEMENT_TIMEOUT": "2"},
    ) as running:
        yield running


@pytest.fixture(autouse=True)
async def whole_again(stack: DistributedStack, postgres_proxy: TcpProxy) -> AsyncIterator[None]:
    """Whatever a test broke is mended after it, so that one failure does not cascade."""
    yield
    await postgres_proxy.restore()
    if not stack.redis.running:
        await stack.redis.start()
    for service in [*stack.user_services, *stack.order_services]:
        if not service.running:
            await service.start()
    await stack.wait_for_subscribers()


@pytest.fixture
async def fault_api(stack: DistributedStack) -> AsyncIterator[Api]:
    async with (
        httpx.AsyncClient(base_url=stack.user_service.url, timeout=20.0) as users,
        httpx.AsyncClient(base_url=stack.order_service.url, timeout=20.0) as orders,
    ):
        yield Api(Deployment("faults", users, orders, INTERNAL_TOKEN, {"stack": stack}))


async def accounts(api: Api, count: int) -> list[Account]:
    """Registered, logged-in accounts (hence cached), each able to order already (so the order
    service has the signing keys before any fault)."""
    made = [await api.account() for _ in range(count)]
    for account in made:
        first = await api.create_order(account.token, key=f"{OUTSIDE_LOAD}{uuid.uuid4().hex}")
        assert first.status_code == 201, first.text
    return made


def logged_request_ids(log_path: Path, path_contains: str) -> set[str]:
    """Request ids of the access-log lines of a service whose path contains the text."""
    ids: set[str] = set()
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("logger") == "access" and path_contains in str(entry.get("path", "")):
            ids.add(str(entry.get("request_id")))
    return ids
