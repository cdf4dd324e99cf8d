"""Observing the distributed deployment as it runs: real service processes, their /metrics
after known traffic, their traces received by an OTLP/HTTP endpoint of this test (decoded with
opentelemetry-proto), their JSON log lines.

One stack for the module, with tracing on (every trace sampled, exported at once to the
receiver); each test reads counters before and after its own traffic, so they may share it."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import user_cache_key
from tests.support.api import Account, Api, order_body
from tests.support.deployments import INTERNAL_TOKEN, Deployment
from tests.support.distributed import DistributedStack, distributed_stack
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's SpanKind numbers


@dataclass
class Observed:
    stack: DistributedStack
    api: Api
    receiver: OtlpReceiver


@pytest.fixture(scope="module")
async def observed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Observed]:
    with otlp_receiver() as receiver:
        env = {
            "LOG_LEVEL": "INFO",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        async with (
            distributed_stack(
                tmp_path_factory.mktemp("observed-stack"),
                internal_token=INTERNAL_TOKEN,
                extra_env=env,
            ) as stack,
            httpx.AsyncClient(base_url=stack.user_service.url, timeout=20.0) as users,
            httpx.AsyncClient(base_url=stack.order_service.url, timeout=20.0) as orders,
        ):
            api = Api(Deployment("observed", users, orders, INTERNAL_TOKEN, {"stack": stack}))
            yield Observed(stack, api, receiver)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, have), v in samples.items() if n == name and set(labels.items()) <= set(have)
    )


async def forget_cached(stack: DistributedStack, account: Account) -> None:
    async with stack.redis.client() as redis:
        await redis.delete(user_cache_key(account.id))


async def ready_account(api: Api) -> Account:
    """Registered and logged in; one order placed, so the order service has the signing keys."""
    account = await api.account()
    assert (await api.create_order(account.token)).status_code == 201
    return account


async def test_order_counters_match_the_traffic(observed: Observed) -> None:
    api = observed.api
    account = await ready_account(api)
    before = await scrape(api.orders)
    created = 5
    for _ in range(created):
        assert (await api.create_order(account.token)).status_code == 201
    key = f"replay-{uuid.uuid4().hex}"
    assert (await api.create_order(account.token, key=key)).status_code == 201
    assert (await api.create_order(account.token, key=key)).status_code == 201  # replayed
    reused = await api.create_order(account.token, {"currency": "USD", "items": []}, key=key)
    assert reused.status_code == 422  # invalid body: refused before the route
    changed = await api.create_order(
        account.token,
        {"currency": "USD", "items": [{"sku": "X", "quantity": 1, "unit_price": "1.00"}]},
        key=key,
    )
    assert changed.status_code == 422
    after = await scrape(api.orders)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("orders_created_total") == created + 1
    assert delta("orders_replayed_total") == 1
    assert delta("orders_refused_total", reason=changed.json()["code"]) == 1
    assert delta("user_verifications_total", source="cache") == created + 3
    assert delta("user_verifications_total", source="bus") == 0
    # Every created order went through the group commit (keyed attempts too, taken or not).
    assert delta("order_commit_batch_size_sum") >= created + 1
    assert 1 <= delta("order_commit_batch_size_count") <= delta("order_commit_batch_size_sum")
    route = {"http_route": "/orders", "http_request_method": "POST"}
    assert delta("http_server_request_duration_seconds_count", **route) == created + 4
    assert (
        delta(
            "http_server_request_duration_seconds_count", **route, http_response_status_code="422"
        )
        == 2
    )
    pool = {"db_client_connection_pool_name": "order-service"}
    assert value(after, "db_client_connection_max", **pool) >= 1
    # The asyncpg pool of the reads and the order writer: it served this traffic.
    direct = {"db_client_connection_pool_name": "order-service.asyncpg"}
    assert value(after, "db_client_connection_max", **direct) == 4
    opened = sum(
        value(after, "db_client_connection_count", **direct, db_client_connection_state=state)
        for state in ("used", "idle")
    )
    assert opened >= 1


async def test_a_cache_miss_is_one_bus_verification(observed: Observed) -> None:
    api, stack = observed.api, observed.stack
    account = await ready_account(api)
    await forget_cached(stack, account)
    before = await scrape(api.orders)
    assert (await api.create_order(account.token)).status_code == 201
    after = await scrape(api.orders)
    for source, expected in (("cache", 0), ("bus", 1), ("http", 0), ("unavailable", 0)):
        name = "user_verifications_total"
        got = value(after, name, source=source) - value(before, name, source=source)
        assert got == expected, source
    round_trips = "user_verification_bus_duration_seconds_count"
    assert value(after, round_trips) - value(before, round_trips) == 1


async def test_without_the_bus_the_verification_goes_over_http(observed: Observed) -> None:
    api, stack = observed.api, observed.stack
    account = await ready_account(api)
    before = await scrape(api.orders)
    request_id = f"fallback-{uuid.uuid4().hex}"
    await stack.stop_redis()
    try:
        response = await api.orders.post(
            "/orders", json=order_body(), headers={**account.auth, "X-Request-ID": request_id}
        )
        assert response.status_code == 201
        after = await scrape(api.orders)
    finally:
        await stack.start_redis()
    name = "user_verifications_total"
    assert value(after, name, source="http") - value(before, name, source="http") == 1
    assert value(after, name, source="bus") == value(before, name, source="bus")
    faults = "db_client_errors_total"
    assert value(after, faults, db_system_name="redis") > value(
        before, faults, db_system_name="redis"
    )
    # The request id went along on the HTTP fallback: the user service logged it.
    await wait_for_line(stack, stack.user_service.name, request_id)
    answered = [
        json.loads(line) for line in log_lines(stack, stack.user_service.name) if request_id in line
    ]
    assert any(e["request_id"] == request_id and e["logger"] == "access" for e in answered)


async def test_series_stay_bounded_however_many_users_and_orders(observed: Observed) -> None:
    """No label takes a user's, an order's or a path's own value: more users, orders and
    unknown paths make no new series once each kind of request has been seen."""
    api = observed.api

    async def traffic(users: int) -> list[str]:
        ids = []
        for _ in range(users):
            account = await api.account()
            created = await api.create_order(account.token)
            order_id = created.json()["id"]
            ids += [account.id, order_id]
            assert (await api.get_order(account.token, order_id)).status_code == 200
            assert (await api.get_order(account.token, str(uuid.uuid4()))).status_code == 404
            await api.orders.get(f"/no-such-path/{secrets.token_hex(4)}")
            await api.users.get(f"/no-such-path/{secrets.token_hex(4)}")
        return ids

    await traffic(2)
    for client in (api.orders, api.users):
        await scrape(client)  # a scrape is a request too: its own series exists from now on
    series = [set(await scrape(api.orders)), set(await scrape(api.users))]
    ids = await traffic(12)
    texts = [(await client.get("/metrics")).text for client in (api.orders, api.users)]
    after = [set(await scrape(api.orders)), set(await scrape(api.users))]
    assert [a - b for a, b in zip(after, series, strict=True)] == [set(), set()]
    for text in texts:
        assert "no-such-path" not in text
        assert not [i for i in ids if i in text]


async def test_metrics_are_not_in_the_openapi_document(observed: Observed) -> None:
    for client in (observed.api.users, observed.api.orders):
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/metrics" not in paths
        assert (await client.get("/metrics")).status_code == 200


def spans_of(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    return receiver.trace(trace_id)


async def test_a_cache_miss_order_is_one_trace_across_both_services(observed: Observed) -> None:
    api, stack, receiver = observed.api, observed.stack, observed.receiver
    account = await ready_account(api)
    await forget_cached(stack, account)
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    request_id = f"observed-{uuid.uuid4().hex}"
    response = await api.orders.post(
        "/orders",
        json={"currency": "EUR", "items": [{"sku": "A", "quantity": 1, "unit_price": "2.00"}]},
        headers={
            **account.auth,
            "traceparent": f"00-{trace_id}-{parent_id}-01",
            "X-Request-ID": request_id,
        },
    )
    assert response.status_code == 201

    def complete(spans: list[ReceivedSpan]) -> bool:
        ours = [s for s in spans if s.trace_id == trace_id]
        return {"order-service", "user-service"} <= {s.service for s in ours} and any(
            s.kind == CONSUMER for s in ours
        )

    receiver.wait_for(complete)
    spans = spans_of(receiver, trace_id)
    by_id = {s.span_id: s for s in spans}
    [server] = [s for s in spans if s.kind == SERVER and s.service == "order-service"]
    assert server.parent_span_id == parent_id  # the client's traceparent is honoured
    assert server.attributes.get("http.route") == "/orders"
    [consumer] = [s for s in spans if s.kind == CONSUMER]
    assert consumer.service == "user-service"
    # The user service's handling descends from the order request, through the bus message.
    ancestor = by_id.get(consumer.parent_span_id)
    while ancestor is not None and ancestor is not server:
        ancestor = by_id.get(ancestor.parent_span_id)
    assert ancestor is server
    order_side = [s for s in spans if s.service == "order-service" and s.kind == CLIENT]
    assert "postgresql" in {db_system(s) for s in order_side}  # SQL statements
    redis_commands = {s.name.split()[0] for s in order_side if db_system(s) == "redis"}
    assert {"GET", "PUBLISH"} <= redis_commands


def db_system(span: ReceivedSpan) -> object:
    return span.attributes.get("db.system.name", span.attributes.get("db.system"))


async def wait_for_line(stack: DistributedStack, name: str, text: str, within: float = 10) -> None:
    for _ in range(int(within / 0.05)):
        if any(text in line for line in log_lines(stack, name)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never logged {text!r}")


def log_lines(stack: DistributedStack, name: str) -> list[str]:
    path: Path = stack.folder / f"{name}.log"
    return path.read_text().splitlines()


async def test_log_lines_are_json_with_request_and_trace_ids(observed: Observed) -> None:
    api, stack = observed.api, observed.stack
    account = await ready_account(api)
    trace_id = secrets.token_hex(16)
    request_id = f"logged-{uuid.uuid4().hex}"
    response = await api.orders.get(
        "/orders",
        headers={
            **account.auth,
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            "X-Request-ID": request_id,
        },
    )
    assert response.status_code == 200
    name = stack.order_service.name
    # The access line is written once the response has gone: wait for it.
    await wait_for_line(stack, name, request_id)
    entries = []
    for line in log_lines(stack, name):
        if "Application startup complete" in line or request_id in line:
            entries.append(json.loads(line))  # uvicorn's own lines are JSON too
    assert any(e["logger"].startswith("uvicorn") for e in entries)
    [access] = [e for e in entries if e.get("request_id") == request_id and e["logger"] == "access"]
    assert access["trace_id"] == trace_id
    assert len(access["span_id"]) == 16
