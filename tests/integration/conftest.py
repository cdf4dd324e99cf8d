"""Fixtures of the integration layer: a distributed stack of its own (private Redis, fresh
databases, real service processes), separate from the contract tests' one because these tests
stop and restart its parts."""

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from devstack.aio import RedisServer
from servicekit.redis import create_redis
from tests.support.api import Api
from tests.support.backing import private_redis
from tests.support.deployments import INTERNAL_TOKEN, Deployment
from tests.support.distributed import DistributedStack, distributed_stack


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DistributedStack]:
    async with distributed_stack(
        tmp_path_factory.mktemp("integration-stack"), internal_token=INTERNAL_TOKEN
    ) as running:
        yield running


@pytest.fixture(scope="session")
async def stack_api(stack: DistributedStack) -> AsyncIterator[Api]:
    """The API helper on the stack's first user service and first order service."""
    async with (
        httpx.AsyncClient(base_url=stack.user_service.url, timeout=10.0) as users,
        httpx.AsyncClient(base_url=stack.order_service.url, timeout=10.0) as orders,
    ):
        yield Api(Deployment("integration", users, orders, INTERNAL_TOKEN, {"stack": stack}))


@pytest.fixture(scope="module")
async def redis_server() -> AsyncIterator[RedisServer]:
    """A private redis-server per test module (stoppable: some tests stop and start it)."""
    async with private_redis() as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = create_redis(
        "127.0.0.1", redis_server.port, name="test", connect_timeout=0.25, timeout=0.25
    )
    yield client
    await client.aclose()
