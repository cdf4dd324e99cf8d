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

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import Tracer, TracerProvider

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
    """A span per SQL statement of this engine (``AsyncEngine``), and nothing global."""
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as version
    from opentelemetry.metrics import NoOpMeter

    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", version)
    # Its pool gauge would go to an OpenTelemetry meter; the pool is on /metrics already.
    usage = NoOpMeter("sqlalchemy").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine.sync_engine, usage, enable_commenter=False)  # type: ignore[no-untyped-call]


def instrument_httpx(client: Any, provider: TracerProvider | None) -> None:
    """A client span per request of this ``httpx`` client, with ``traceparent`` sent."""
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def instrument_redis(client: Any, provider: TracerProvider | None) -> None:
    """A client span per command of this redis-py client (cache, rate limiter)."""
    if provider is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client, tracer_provider=provider)
