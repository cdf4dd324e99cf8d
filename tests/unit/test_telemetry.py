"""Telemetry configuration: tracing only from OTEL_*, a registry per app, metrics switchable."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import SpanKind, StatusCode

from servicekit.logs import JsonFormatter
from servicekit.metrics import Metrics
from servicekit.telemetry import Telemetry, telemetry_from_environment
from servicekit.tracing import (
    TracingConfigurationError,
    context_of,
    create_tracer_provider,
    traceparent_of,
    tracing_wanted,
)
from servicekit.web import create_base_app


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_the_environment_asks(env: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(env) is wanted
    assert (create_tracer_provider("svc", env) is not None) is wanted


def test_without_otel_service_name_the_service_reports_its_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = create_tracer_provider("order-service", {"OTEL_TRACES_EXPORTER": "console"})
    assert provider is not None
    assert provider.resource.attributes[SERVICE_NAME] == "order-service"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-eu")
    named = create_tracer_provider("order-service", {"OTEL_TRACES_EXPORTER": "console"})
    assert named is not None
    assert named.resource.attributes[SERVICE_NAME] == "orders-eu"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_a_setting_it_cannot_honour_stops_with_one_line(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    with pytest.raises(TracingConfigurationError, match=named):
        create_tracer_provider("svc", env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit):
        telemetry_from_environment("svc", metrics_enabled=True)
    assert named in capsys.readouterr().err


def test_a_traceparent_survives_the_trip_through_a_message() -> None:
    provider = create_tracer_provider("svc", {"OTEL_TRACES_EXPORTER": "console"})
    assert provider is not None
    assert traceparent_of() is None  # no span, nothing to carry
    with provider.get_tracer("t").start_as_current_span("asking") as span:
        carried = traceparent_of()
    assert carried is not None
    parent = context_of(carried)
    assert parent is not None
    with provider.get_tracer("t").start_as_current_span("answering", context=parent) as child:
        assert isinstance(child, ReadableSpan)
        assert child.parent is not None
        assert child.parent.span_id == span.get_span_context().span_id
    provider.shutdown()


def test_log_lines_inside_a_span_carry_its_ids() -> None:
    provider = create_tracer_provider("svc", {"OTEL_TRACES_EXPORTER": "console"})
    assert provider is not None
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc", traces=True))
    logger = logging.getLogger("test.telemetry")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("outside")
        with provider.get_tracer("t").start_as_current_span("work") as span:
            logger.warning("inside")
    finally:
        logger.removeHandler(handler)
    outside, inside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "trace_id" not in outside
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    provider.shutdown()


def tiny_app(telemetry: Telemetry) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_base_app(
        title="t", version="1", lifespan=lifespan, max_body_bytes=4096, telemetry=telemetry
    )

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    return app


async def get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return [await client.get(path) for path in paths]


async def test_two_apps_in_one_process_count_apart() -> None:
    first, second = tiny_app(Telemetry(Metrics.enabled())), tiny_app(Telemetry(Metrics.enabled()))
    await get(first, "/things/1", "/things/2", "/things/3")
    await get(second, "/things/9")
    [one] = await get(first, "/metrics")
    [two] = await get(second, "/metrics")
    route = 'http_route="/things/{thing_id}"'
    count = "http_server_request_duration_seconds_count"
    ones = [ln for ln in one.text.splitlines() if ln.startswith(count) and route in ln]
    twos = [ln for ln in two.text.splitlines() if ln.startswith(count) and route in ln]
    assert ones[0].endswith(" 3.0")
    assert twos[0].endswith(" 1.0")


async def test_raw_paths_and_odd_methods_make_no_series_of_their_own() -> None:
    app = tiny_app(Telemetry(Metrics.enabled()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/nowhere/abc123")
        await client.request("BREW", "/things/7")
        text = (await client.get("/metrics")).text
    assert "abc123" not in text
    assert 'http_route="unmatched"' in text
    assert 'http_request_method="_OTHER"' in text
    assert "BREW" not in text


async def test_with_metrics_off_there_is_no_metrics_endpoint() -> None:
    app = tiny_app(Telemetry(Metrics.disabled()))
    thing, metrics = await get(app, "/things/1", "/metrics")
    assert thing.status_code == 200
    assert metrics.status_code == 404


def recorded_telemetry(sampler: Sampler) -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = SdkTracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(Metrics.disabled(), provider), exporter


def traced_app(telemetry: Telemetry) -> FastAPI:
    """``tiny_app`` with a route that answers with the trace it runs in, as a message sent
    from it would carry it."""
    app = tiny_app(telemetry)

    @app.get("/carried")
    async def carried() -> dict[str, str | None]:
        return {"traceparent": traceparent_of()}

    return app


async def test_a_request_is_a_server_span_named_by_its_route_under_the_callers_trace() -> None:
    telemetry, exporter = recorded_telemetry(ParentBased(ALWAYS_ON))
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    transport = httpx.ASGITransport(app=tiny_app(telemetry))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/things/7?full=1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
        )
        assert response.status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    thing, nowhere = exporter.get_finished_spans()
    assert thing.name == "GET /things/{thing_id}"
    assert thing.kind == SpanKind.SERVER
    assert format(thing.context.trace_id, "032x") == trace_id
    assert thing.parent is not None
    assert format(thing.parent.span_id, "016x") == parent_id
    assert dict(thing.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/things/{thing_id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "url.path": "/things/7",
        "url.query": "full=1",
        "network.protocol.version": "1.1",
        "server.address": "t",
    }
    assert nowhere.name == "GET"  # no route: no template, and never the raw path
    assert "http.route" not in (nowhere.attributes or {})
    assert nowhere.parent is None


async def test_a_request_the_sampler_leaves_out_records_nothing_and_still_carries_its_trace() -> (
    None
):
    telemetry, exporter = recorded_telemetry(ParentBased(ALWAYS_ON))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    transport = httpx.ASGITransport(app=traced_app(telemetry))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/carried", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"}
        )
    assert exporter.get_finished_spans() == ()
    carried = response.json()["traceparent"]
    assert carried is not None
    # The same trace, still not sampled, so that the next service leaves it out too.
    assert carried.startswith(f"00-{trace_id}-")
    assert carried.endswith("-00")


async def test_a_failing_request_is_an_error_span() -> None:
    telemetry, exporter = recorded_telemetry(ALWAYS_ON)
    app = tiny_app(telemetry)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("broken")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/broken")).status_code == 500
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RuntimeError"


def test_every_pool_is_one_sample_of_one_family() -> None:
    """Two pools watched (the single process has two engines; a service its engine and its
    asyncpg pool): one family of each name, one sample per pool and state; a pool watched
    again under its name replaces the one before."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.watch_pool("users", lambda: (1, 2, 5))
    metrics.watch_pool("orders", lambda: (0, 0, 4))
    metrics.watch_pool("orders", lambda: (3, 1, 4))
    text = generate_latest(registry).decode()
    assert text.count("# TYPE db_client_connection_count ") == 1
    families = {f.name: f for f in text_string_to_metric_families(text)}
    count = {
        (
            s.labels["db_client_connection_pool_name"],
            s.labels["db_client_connection_state"],
        ): s.value
        for s in families["db_client_connection_count"].samples
    }
    assert count == {
        ("users", "used"): 1,
        ("users", "idle"): 2,
        ("orders", "used"): 3,
        ("orders", "idle"): 1,
    }
    most = {
        s.labels["db_client_connection_pool_name"]: s.value
        for s in families["db_client_connection_max"].samples
    }
    assert most == {"users": 5, "orders": 4}
