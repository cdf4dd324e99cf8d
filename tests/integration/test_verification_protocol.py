"""The original design's verification protocol, watched on a real Redis between real processes.

The order service reads ``user:{user_id}`` first; on a miss it publishes one ``VerifyUser`` on
``verify_user`` and takes the first ``UserVerification`` with the same request id from
``user_verification_response``; without an answer it asks the user service over HTTP; failing
that, 503. A raw subscriber on both channels sees every message; to know it has seen all of
them up to a point, it publishes a marker and reads up to it (Redis delivers in order), so no
test waits for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from contracts import (
    USER_CACHE_TTL_SECONDS,
    USER_VERIFICATION_RESPONSE_CHANNEL,
    VERIFY_USER_CHANNEL,
    CachedUser,
    UserVerification,
    VerifyUser,
    user_cache_key,
)
from devstack.aio import ServerProcess
from tests.support.api import Account, Api, assert_problem
from tests.support.deployments import INTERNAL_TOKEN, Deployment
from tests.support.distributed import DistributedStack

# A bound for failures only: no assertion depends on how fast anything is.
PATIENCE = 15.0


@dataclass(frozen=True)
class Seen:
    channel: str
    data: bytes

    @property
    def body(self) -> dict[str, object]:
        decoded: dict[str, object] = json.loads(self.data)
        return decoded


class ChannelWatch:
    """A raw subscriber on both protocol channels."""

    def __init__(self, client: Redis, pubsub: PubSub) -> None:
        self._client = client
        self._pubsub = pubsub
        self.messages: list[Seen] = []

    async def _next(self) -> Seen:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message.get("type") == "message":
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                return Seen(name, message["data"])

    async def settle(self) -> list[Seen]:
        """Every message published before this call: a marker published now closes the read,
        since Redis delivers to a subscriber in the order it executed the PUBLISHes."""
        marker = f"marker-{uuid.uuid4().hex}".encode()
        # Not JSON: every order service drops it.
        await self._client.publish(USER_VERIFICATION_RESPONSE_CHANNEL, marker)
        async with asyncio.timeout(PATIENCE):
            while (seen := await self._next()).data != marker:
                self.messages.append(seen)
        return list(self.messages)

    async def wait_for_replies(self, request_id: str, count: int) -> None:
        """Read until ``count`` replies to ``request_id`` were seen (PATIENCE bounds a
        failure; it is not an assertion on speed)."""
        async with asyncio.timeout(PATIENCE):
            while len(self.replies(request_id)) < count:
                self.messages.append(await self._next())

    def requests(self, user_id: str) -> list[VerifyUser]:
        return [
            VerifyUser.model_validate_json(m.data)
            for m in self.messages
            if m.channel == VERIFY_USER_CHANNEL and m.body.get("user_id") == user_id
        ]

    def replies(self, request_id: str) -> list[UserVerification]:
        return [
            UserVerification.model_validate_json(m.data)
            for m in self.messages
            if m.channel == USER_VERIFICATION_RESPONSE_CHANNEL
            and m.data.startswith(b"{")
            and m.body.get("request_id") == request_id
        ]


@contextlib.asynccontextmanager
async def watch_channels(stack: DistributedStack) -> AsyncIterator[ChannelWatch]:
    async with stack.redis.client() as client:
        pubsub = client.pubsub()
        await pubsub.subscribe(VERIFY_USER_CHANNEL, USER_VERIFICATION_RESPONSE_CHANNEL)
        try:
            yield ChannelWatch(client, pubsub)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def cached_user(stack: DistributedStack, user_id: str) -> tuple[CachedUser | None, int]:
    async with stack.redis.client() as client:
        raw = await client.get(user_cache_key(user_id))
        ttl = int(await client.ttl(user_cache_key(user_id)))
    return (CachedUser.model_validate_json(raw) if raw is not None else None), ttl


async def forget_cached_user(stack: DistributedStack, user_id: str) -> None:
    async with stack.redis.client() as client:
        await client.delete(user_cache_key(user_id))


async def orders_in_database(stack: DistributedStack, user_id: str) -> int:
    """Counted in the order service's own database: what was written, whatever the API says."""
    dsn = stack.order_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM customer_order WHERE user_id = $1", uuid.UUID(user_id)
        )
    finally:
        await conn.close()
    return count


def assert_ttl_is_the_designs(ttl: int) -> None:
    # Written a moment ago with EX 3600: what is left is the full TTL minus that moment.
    assert USER_CACHE_TTL_SECONDS - 60 < ttl <= USER_CACHE_TTL_SECONDS


async def test_user_service_caches_the_user_on_register_login_and_deactivation(
    stack: DistributedStack, stack_api: Api
) -> None:
    registered = await stack_api.register()
    assert registered.status_code == 201
    user = registered.json()
    cached, ttl = await cached_user(stack, user["id"])
    assert cached is not None
    assert (str(cached.id), cached.email, cached.active) == (user["id"], user["email"], True)
    assert_ttl_is_the_designs(ttl)

    await forget_cached_user(stack, user["id"])
    logged_in = await stack_api.login(user["email"])
    assert logged_in.status_code == 200
    cached, ttl = await cached_user(stack, user["id"])
    assert cached is not None
    assert cached.active is True
    assert_ttl_is_the_designs(ttl)

    deactivated = await stack_api.deactivate(logged_in.json()["access_token"])
    assert deactivated.status_code == 204
    after, ttl = await cached_user(stack, user["id"])
    assert after is not None
    assert after.active is False
    assert after.version > cached.version
    assert_ttl_is_the_designs(ttl)


async def test_a_cache_hit_sends_no_message(stack: DistributedStack, stack_api: Api) -> None:
    account = await stack_api.account()
    assert (await cached_user(stack, account.id))[0] is not None
    async with watch_channels(stack) as watch:
        created = await stack_api.create_order(account.token)
        assert created.status_code == 201, created.text
        await watch.settle()
    assert watch.requests(account.id) == []
    assert not any(account.id.encode() in m.data for m in watch.messages)


async def test_a_miss_sends_one_request_and_takes_its_reply(
    stack: DistributedStack, stack_api: Api
) -> None:
    account = await stack_api.account()
    await forget_cached_user(stack, account.id)
    async with watch_channels(stack) as watch:
        created = await stack_api.create_order(account.token)
        assert created.status_code == 201, created.text
        await watch.settle()

    [request] = watch.requests(account.id)
    [wire_request] = [m for m in watch.messages if m.channel == VERIFY_USER_CHANNEL]
    assert set(wire_request.body) == {"request_id", "user_id", "trace_id"}
    assert request.request_id
    [reply] = watch.replies(request.request_id)
    assert str(reply.user_id) == account.id
    assert (reply.exists, reply.active) == (True, True)
    [wire_reply] = [m for m in watch.messages if m.channel == USER_VERIFICATION_RESPONSE_CHANNEL]
    # The reply carries its tag (servicekit.tags), made with the key only the services hold.
    assert set(wire_reply.body) == {
        "request_id",
        "user_id",
        "exists",
        "active",
        "session_epoch",
        "tag",
    }
    assert len(watch.messages) == 2  # nothing else on either channel

    # Answering refilled the cache: the next order is a hit again.
    refilled, _ = await cached_user(stack, account.id)
    assert refilled is not None
    assert refilled.active is True


async def test_an_entry_without_a_valid_tag_is_a_miss(
    stack: DistributedStack, stack_api: Api
) -> None:
    """Whoever can write to Redis cannot answer for the user service: an entry as the design
    describes it, but without the services' tag, is not believed; the order service asks."""
    account = await stack_api.account()
    forged = CachedUser(id=uuid.UUID(account.id), email=account.email, active=True, version=10**9)
    async with stack.redis.client() as client:
        await client.set(user_cache_key(account.id), forged.model_dump_json(), ex=3600)
    async with watch_channels(stack) as watch:
        created = await stack_api.create_order(account.token)
        assert created.status_code == 201, created.text
        await watch.settle()
    [request] = watch.requests(account.id)
    [reply] = watch.replies(request.request_id)
    assert (reply.exists, reply.active) == (True, True)


async def test_user_service_down_and_cold_cache_is_503_and_writes_nothing(
    stack: DistributedStack, stack_api: Api
) -> None:
    account = await stack_api.account()
    first = await stack_api.create_order(account.token)  # the order service now has the keys
    assert first.status_code == 201, first.text
    await stack.user_service.stop()
    try:
        await forget_cached_user(stack, account.id)
        async with watch_channels(stack) as watch:
            refused = await stack_api.create_order(account.token)
            await watch.settle()
        body = assert_problem(refused, 503, "user_verification_unavailable")
        assert int(refused.headers["retry-after"]) >= 1
        assert "Traceback" not in json.dumps(body)
        # It did ask on the bus first; nobody was there to answer. (Our watcher counts as a
        # listener, so the order service waited for its timeout instead of going straight to
        # the fallback; the outcome is the same.)
        [request] = watch.requests(account.id)
        assert watch.replies(request.request_id) == []
        listed = await stack_api.list_orders(account.token)
        assert_problem(listed, 503, "user_verification_unavailable")
    finally:
        await stack.user_service.start()
        await stack.wait_for_subscribers()
    assert await orders_in_database(stack, account.id) == 1
    listed = await stack_api.list_orders(account.token)
    assert [o["id"] for o in listed.json()["items"]] == [first.json()["id"]]


async def test_redis_down_orders_go_through_the_http_fallback(
    stack: DistributedStack, stack_api: Api
) -> None:
    account = await stack_api.account()
    assert (await stack_api.create_order(account.token)).status_code == 201
    await stack.stop_redis()
    try:
        created = await stack_api.create_order(account.token)
        assert created.status_code == 201, created.text
        assert created.json()["user_id"] == account.id
        listed = await stack_api.list_orders(account.token)
        assert len(listed.json()["items"]) == 2

        # Liveness holds; readiness names Redis.
        assert (await stack_api.orders.get("/health")).status_code == 200
        ready = await stack_api.orders.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["redis"] != "ok"

        # A deactivation that cannot reach the cache is refused, and changes nothing.
        refused = await stack_api.deactivate(account.token)
        assert_problem(refused, 503, "service_unavailable")
        assert (await stack_api.create_order(account.token)).status_code == 201
    finally:
        await stack.start_redis()
    # Redis is back, empty: the first order is a miss answered on the bus.
    async with watch_channels(stack) as watch:
        assert (await stack_api.create_order(account.token)).status_code == 201
        await watch.settle()
    [request] = watch.requests(account.id)
    assert len(watch.replies(request.request_id)) == 1
    assert await orders_in_database(stack, account.id) == 4


@dataclass
class Replicas:
    users: list[ServerProcess]
    orders: list[ServerProcess]
    user_clients: list[httpx.AsyncClient]
    order_clients: list[httpx.AsyncClient]

    def api(self, user: int, order: int) -> Api:
        return Api(
            Deployment(
                f"replicas u{user} o{order}",
                self.user_clients[user],
                self.order_clients[order],
                INTERNAL_TOKEN,
            )
        )


@pytest.fixture(scope="class")
async def replicas(stack: DistributedStack) -> AsyncIterator[Replicas]:
    added = [stack.new_user_service(), stack.new_order_service()]
    for service in added:
        service.launch()
    try:
        await asyncio.gather(*(s.wait_ready() for s in added))
        await stack.wait_for_subscribers()
        async with contextlib.AsyncExitStack() as clients:
            user_clients = [
                await clients.enter_async_context(httpx.AsyncClient(base_url=s.url, timeout=10))
                for s in stack.user_services
            ]
            order_clients = [
                await clients.enter_async_context(httpx.AsyncClient(base_url=s.url, timeout=10))
                for s in stack.order_services
            ]
            yield Replicas(
                list(stack.user_services),
                list(stack.order_services),
                user_clients,
                order_clients,
            )
    finally:
        for service in added:
            await stack.remove(service)


class TestReplicas:
    """Two user services and two order services on one Redis give the results of one each."""

    async def account_across(self, replicas: Replicas) -> Account:
        """Registered on the first user service, logged in on the second."""
        first, second = replicas.api(0, 0), replicas.api(1, 1)
        registered = await first.register()
        assert registered.status_code == 201
        email = registered.json()["email"]
        logged_in = await second.login(email)
        assert logged_in.status_code == 200
        return Account(registered.json()["id"], email, "", logged_in.json()["access_token"])

    async def test_every_request_is_answered_and_duplicates_are_ignored(
        self, stack: DistributedStack, replicas: Replicas
    ) -> None:
        account = await self.account_across(replicas)
        for order in (0, 1):
            api = replicas.api(0, order)
            await forget_cached_user(stack, account.id)
            async with watch_channels(stack) as watch:
                created = await api.create_order(account.token)
                assert created.status_code == 201, created.text
                # Both user services answer the one request; the second answer comes when it
                # comes, so read until it is there.
                await watch.settle()
                [request] = watch.requests(account.id)
                await watch.wait_for_replies(request.request_id, 2)
                await watch.settle()
            replies = watch.replies(request.request_id)
            assert len(replies) == 2
            assert all((r.exists, r.active) == (True, True) for r in replies)

        # Many at once across both order services, each on a cold cache when it starts.
        await forget_cached_user(stack, account.id)
        results = await asyncio.gather(
            *(replicas.api(0, i % 2).create_order(account.token) for i in range(10))
        )
        assert [r.status_code for r in results] == [201] * 10
        ids = {r.json()["id"] for r in results}
        assert len(ids) == 10
        for order in (0, 1):
            listed = await replicas.api(0, order).list_orders(account.token, limit=100)
            assert {o["id"] for o in listed.json()["items"]} >= ids
        assert await orders_in_database(stack, account.id) == 12

    async def test_deactivation_is_seen_at_once_by_every_order_replica(
        self, stack: DistributedStack, replicas: Replicas
    ) -> None:
        account = await self.account_across(replicas)
        for order in (0, 1):
            assert (await replicas.api(0, order).create_order(account.token)).status_code == 201
        deactivated = await replicas.api(1, 0).deactivate(account.token)
        assert deactivated.status_code == 204
        for order in (0, 1):
            refused = await replicas.api(0, order).create_order(account.token)
            assert_problem(refused, 403, "user_not_allowed")
        # Cold cache: both user services answer "inactive" on the bus; still no order.
        await forget_cached_user(stack, account.id)
        for order in (0, 1):
            refused = await replicas.api(0, order).create_order(account.token)
            assert_problem(refused, 403, "user_not_allowed")
        assert await orders_in_database(stack, account.id) == 2
