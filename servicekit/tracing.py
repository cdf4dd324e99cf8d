"""OpenTelemetry traces, configured only by the standard ``OTEL_*`` environment variables.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an
OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``),
and ``OTEL_SDK_DISABLED`` is not ``true``. With none of them set there is no provider at all:
no span is made, no context is read or written, the SDK is not even imported.

Everything else is the SDK's own reading of the environment: the sampler
(``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``), the batch processor (``OTEL_BSP_*``),
the exporter's endpoint, headers, timeout and compression, the resource
(``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), the propagators (``OTEL_PROPAGATORS``,
W3C ``traceparent`` by default). Without ``OTEL_SERVICE_NAME`` a service reports the name its
composition root gives. OTLP goes over HTTP/protobuf, the protocol the SDKs default to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, TracerProvider
from starlette.types import Scope

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SUPPORTED_PROTOCOLS = ("http/protobuf",)
SUPPORTED_EXPORTERS = ("otlp", "console", "none")


class TracingConfigurationError(ValueError):
    """An ``OTEL_*`` value this deployment cannot honour."""


def _exporters(env: Mapping[str, str]) -> list[str]:
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    return [name for name in names if name]


def tracing_wanted(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(env)
    if exporters:
        return any(name != "none" for name in exporters)
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def create_tracer_provider(
    service_name: str, env: Mapping[str, str] | None = None
) -> SdkTracerProvider | None:
    """The provider the environment asks for, or None when tracing is off. Raises
    ``TracingConfigurationError`` for an exporter or protocol it cannot honour."""
    env = os.environ if env is None else env
    if not tracing_wanted(env):
        return None
    exporters = [name for name in (_exporters(env) or ["otlp"]) if name != "none"]
    unknown = [name for name in exporters if name not in SUPPORTED_EXPORTERS]
    if unknown:
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} not supported "
            f"(one of {', '.join(SUPPORTED_EXPORTERS)})"
        )
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if "otlp" in exporters and protocol not in SUPPORTED_PROTOCOLS:
        raise TracingConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} not supported (use http/protobuf)"
        )
    # Imported only when tracing is on: a process without it never loads the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = SdkTracerProvider(resource=resource)
    for name in exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


class _ScopeHeaders(Getter[Scope]):
    """Reads a propagator's headers (``traceparent``, ``baggage``) straight from the ASGI
    scope's header list, without building a headers object for every request."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier["headers"] if header == name]
        return values or None

    def keys(self, carrier: Scope) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier["headers"]]


_SCOPE_HEADERS = _ScopeHeaders()


class ServerSpans:
    """A server span per HTTP request, child of the caller's ``traceparent`` (or whatever
    ``OTEL_PROPAGATORS`` reads), current while the request runs, named by its route template.

    The sampler decides at ``start``, on the method alone; everything else (route, status,
    URL, server address) is looked up and set only on a span that records, at ``finish``: a
    request the sampler leaves out pays for one extraction, one non-recording span and one
    context switch. The span stays current until ``finish``, so that whatever the request
    logs or sends (the bus message, the HTTP fallback) carries its trace, sampled or not."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("servicekit.web")

    def start(self, scope: Scope, method: str) -> tuple[Span, object]:
        parent = propagate.extract(scope, getter=_SCOPE_HEADERS)
        span = self._tracer.start_span(
            "HTTP" if method == "_OTHER" else method, context=parent, kind=SpanKind.SERVER
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def finish(
        self,
        span: Span,
        token: object,
        scope: Scope,
        *,
        method: str,
        route: str | None,
        status: int,
        failure: BaseException | None,
    ) -> None:
        try:
            if span.is_recording():
                if route is not None:
                    span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
                span.set_attributes(_request_attributes(scope, method, route, status, failure))
                if failure is not None or status >= 500:
                    span.set_status(StatusCode.ERROR)
            span.end()
        finally:
            otel_context.detach(token)  # type: ignore[arg-type]


def _request_attributes(
    scope: Scope, method: str, route: str | None, status: int, failure: BaseException | None
) -> dict[str, str | int]:
    """The HTTP server span's attributes (OpenTelemetry's HTTP semantic conventions)."""
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope["path"],
        "http.response.status_code": status,
    }
    if method == "_OTHER":
        attributes["http.request.method_original"] = scope["method"]
    if scope.get("query_string"):
        attributes["url.query"] = scope["query_string"].decode("latin-1")
    if scope.get("http_version"):
        attributes["network.protocol.version"] = scope["http_version"]
    if route is not None:
        attributes["http.route"] = route
    server = scope.get("server")  # the local socket; None on a Unix socket
    if server:
        attributes["server.address"] = server[0]
        if server[1] is not None:
            attributes["server.port"] = server[1]
    if failure is not None:
        attributes["error.type"] = type(failure).__qualname__
    elif status >= 500:
        attributes["error.type"] = str(status)
    return attributes


def tracer_of(provider: TracerProvider | None, name: str) -> Tracer | None:
    return None if provider is None else provider.get_tracer(name)


def traceparent_of(context: Context | None = None) -> str | None:
    """The W3C ``traceparent`` of the current (or given) context, for a message to carry."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    """The remote parent a message's ``traceparent`` names (None without one)."""
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})


def instrument_engine(engine: Any, provider: TracerProvider | None) -> None:
    """A span per SQL statement of this engine (``AsyncEngine``) run inside a span that
    records, and nothing global. A statement outside any sampled trace (the sampler left its
    request out, or it runs in no request) skips the instrumentation's work altogether: its
    span would not be recorded under a parent-based sampler, or be a trace of its own."""
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as version
    from opentelemetry.metrics import NoOpMeter

    class RecordedEngineTracer(EngineTracer):
        def _before_cur_exec(
            self, conn: Any, cursor: Any, statement: Any, params: Any, *rest: Any
        ) -> Any:
            if not trace.get_current_span().is_recording():
                return statement, params
            return super()._before_cur_exec(conn, cursor, statement, params, *rest)  # type: ignore[no-untyped-call]

    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", version)
    # Its pool gauge would go to an OpenTelemetry meter; the pool is on /metrics already.
    usage = NoOpMeter("sqlalchemy").create_up_down_counter("db.client.connections.usage")
    RecordedEngineTracer(tracer, engine.sync_engine, usage, enable_commenter=False)  # type: ignore[no-untyped-call]


def instrument_httpx(client: Any, provider: TracerProvider | None) -> None:
    """A client span per request of this ``httpx`` client, with ``traceparent`` sent."""
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def instrument_redis(client: Any, provider: TracerProvider | None) -> None:
    """A client span per command of this redis-py client (cache, rate limiter) run inside a
    span that records; any other command goes straight to the client, past the
    instrumentation (which would format its arguments and make a span nobody records)."""
    if provider is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client, tracer_provider=provider)
    traced = client.execute_command
    untraced = traced.__wrapped__

    async def execute_command(*args: Any, **options: Any) -> Any:
        if trace.get_current_span().is_recording():
            return await traced(*args, **options)
        return await untraced(*args, **options)

    client.execute_command = execute_command
