"""What a deployment observes itself with: its metrics and, when the environment asks, its
tracer provider. Built once in the composition root (``telemetry_from_environment``) and passed
down to whatever counts or traces; the kit builds none at import."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.trace import Tracer

from servicekit.metrics import Metrics
from servicekit.tracing import TracingConfigurationError, create_tracer_provider

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


@dataclass(frozen=True)
class Telemetry:
    metrics: Metrics = field(default_factory=Metrics.disabled)
    tracing: TracerProvider | None = None

    @classmethod
    def off(cls) -> Telemetry:
        return cls()

    def tracer(self, name: str) -> Tracer | None:
        return None if self.tracing is None else self.tracing.get_tracer(name)

    async def close(self) -> None:
        """Export the spans still waiting, then stop the exporters."""
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


def telemetry_from_environment(service_name: str, *, metrics_enabled: bool) -> Telemetry:
    """Metrics as the settings say; tracing as the ``OTEL_*`` variables say, reported as
    ``service_name`` unless ``OTEL_SERVICE_NAME`` names it. A tracing setting it cannot honour
    stops the process with one line, as a bad setting does."""
    try:
        provider = create_tracer_provider(service_name)
    except TracingConfigurationError as exc:
        print(f"configuration error (tracing): {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return Telemetry(Metrics.create(enabled=metrics_enabled), provider)
