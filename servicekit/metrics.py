"""Prometheus metrics: a registry per app, the HTTP server metrics, pool and fault counters.

The composition root builds one ``Metrics`` per app and passes it down; several apps in one
process (the tests) never share a series. Names follow the OpenTelemetry semantic
conventions where one exists, as the Prometheus exporter would spell them
(``http.server.request.duration`` in seconds becomes ``http_server_request_duration_seconds``).
No label ever takes a value a client chooses: routes are templates, methods outside the
standard ones are ``_OTHER``, a request no route matched is ``unmatched``.

``Metrics.disabled()`` (``METRICS_ENABLED=false``) hands out the same objects backed by nothing:
callers never branch on whether metrics are on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any, NamedTuple

import prometheus_client
from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.faults import is_dependency_fault

# The semantic conventions' advisory buckets for HTTP durations, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# Finer at the low end: a round trip on the bus is well under the HTTP buckets' first step.
ROUND_TRIP_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
UNMATCHED_ROUTE = "unmatched"
METRICS_PATH = "/metrics"


class _Nothing:
    """Stands in for any metric, child or family when metrics are off."""

    def labels(self, *_: object, **__: object) -> _Nothing:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def observe(self, value: float) -> None:
        return None


NOTHING = _Nothing()


class Metrics:
    """One app's registry and the metric families registered in it.

    Services define their own families through ``counter``/``histogram``/``gauge``; with
    metrics off those return a stand-in that records nothing, at the cost of a method call."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        # A family asked for again (a lifespan entered twice) is the one registered.
        self._families: dict[str, Any] = {}
        self._pools: PoolCollector | None = None
        self.http = HttpMetrics(self)
        self.dependency_errors = self.counter(
            "db_client_errors",
            "Faults met talking to a backing service (Redis, Postgres), by kind.",
            ["db_system_name", "error_type"],
        )

    @classmethod
    def enabled(cls) -> Metrics:
        # The ``*_created`` timestamp series double the series count for nothing a dashboard
        # uses; switched off for the process (prometheus_client has no per-registry switch).
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        return cls(CollectorRegistry(auto_describe=True))

    @classmethod
    def disabled(cls) -> Metrics:
        return cls(None)

    @classmethod
    def create(cls, *, enabled: bool) -> Metrics:
        return cls.enabled() if enabled else cls.disabled()

    @property
    def on(self) -> bool:
        return self.registry is not None

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        if self.registry is None:
            return NOTHING
        return self._family(
            name, lambda: Counter(name, documentation, labels, registry=self.registry)
        )

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        if self.registry is None:
            return NOTHING
        return self._family(
            name, lambda: Gauge(name, documentation, labels, registry=self.registry)
        )

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Any:
        if self.registry is None:
            return NOTHING
        return self._family(
            name,
            lambda: Histogram(name, documentation, labels, buckets=buckets, registry=self.registry),
        )

    def _family(self, name: str, make: Callable[[], Any]) -> Any:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = make()
        return family

    def redis_fault(self, exc: BaseException) -> None:
        """For the Redis adapters' ``on_fault``."""
        self.dependency_errors.labels("redis", type(exc).__name__).inc()

    def postgres_fault(self, exc: BaseException) -> None:
        self.dependency_errors.labels("postgresql", type(exc).__name__).inc()

    def watch_pool(self, pool_name: str, figures: Callable[[], tuple[int, int, int]]) -> None:
        """A connection pool's use, read at every scrape: ``figures`` gives the connections
        in use, idle, and the most it opens. A pool watched again under the same name (a
        lifespan entered twice) replaces the one before."""
        if self.registry is None:
            return
        if self._pools is None:
            self._pools = PoolCollector()
            self.registry.register(self._pools)
        self._pools.watch(pool_name, figures)

    def watch_engine(self, engine: AsyncEngine, pool_name: str) -> None:
        """Pool use at every scrape, and every dependency fault a statement meets."""
        if self.registry is None:
            return
        self.watch_pool(pool_name, functools.partial(engine_pool_figures, engine))
        if engine.dialect.name != "postgresql":
            return

        def on_error(context: ExceptionContext) -> None:
            if context.is_disconnect or is_dependency_fault(context.original_exception):
                self.postgres_fault(context.original_exception)

        event.listen(engine.sync_engine, "handle_error", on_error)

    def router(self) -> APIRouter:
        """``GET /metrics`` in the Prometheus text format, left out of the OpenAPI document."""
        router = APIRouter()
        registry = self.registry
        if registry is None:
            return router

        @router.get(METRICS_PATH, include_in_schema=False)
        def metrics() -> Response:
            # A plain function: FastAPI runs it in a thread, so a scrape never holds the loop.
            return Response(
                prometheus_client.generate_latest(registry),
                media_type=prometheus_client.CONTENT_TYPE_LATEST,
            )

        return router


class HttpMetrics:
    """``http_server_request_duration_seconds`` and ``http_server_active_requests``."""

    def __init__(self, metrics: Metrics) -> None:
        self.on = metrics.on
        self._duration = metrics.histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            ["http_request_method", "http_route", "http_response_status_code"],
        )
        self._active = metrics.gauge(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            ["http_request_method"],
        )
        # Children by label values: ``labels()`` validates and locks on every call.
        self._durations: dict[tuple[str, str, int], Any] = {}
        self._actives: dict[str, Any] = {}

    @staticmethod
    def method_label(method: str) -> str:
        return method if method in KNOWN_METHODS else "_OTHER"

    def started(self, method: str) -> None:
        active = self._actives.get(method)
        if active is None:
            active = self._actives[method] = self._active.labels(method)
        active.inc()

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self._actives[method].dec()
        key = (method, route, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self._duration.labels(method, route, str(status))
        child.observe(seconds)


class PoolFigures(NamedTuple):
    used: int
    idle: int
    most: int  # the most connections the pool opens


def engine_pool_figures(engine: AsyncEngine) -> PoolFigures:
    pool: Any = engine.sync_engine.pool
    used = int(pool.checkedout()) if hasattr(pool, "checkedout") else 0
    idle = int(pool.checkedin()) if hasattr(pool, "checkedin") else 0
    size = int(pool.size()) if hasattr(pool, "size") else used + idle
    overflow = max(0, int(getattr(pool, "_max_overflow", 0)))
    return PoolFigures(used, idle, size + overflow)


class PoolCollector(Collector):
    """``db_client_connection_count`` (used, idle) and ``db_client_connection_max`` of every
    pool watched, one family each for all of them, read when Prometheus scrapes: nothing on
    the request path."""

    def __init__(self) -> None:
        self._pools: dict[str, Callable[[], tuple[int, int, int]]] = {}

    def watch(self, name: str, figures: Callable[[], tuple[int, int, int]]) -> None:
        self._pools[name] = figures

    def collect(self) -> Iterable[Metric]:
        count = GaugeMetricFamily(
            "db_client_connection_count",
            "Connections of the pool, by state.",
            labels=["db_client_connection_pool_name", "db_client_connection_state"],
        )
        most = GaugeMetricFamily(
            "db_client_connection_max",
            "The most connections the pool opens.",
            labels=["db_client_connection_pool_name"],
        )
        for name, figures in self._pools.items():
            used, idle, at_most = figures()
            count.add_metric([name, "used"], used)
            count.add_metric([name, "idle"], idle)
            most.add_metric([name], at_most)
        yield count
        yield most

    def describe(self) -> Iterator[Metric]:
        return iter(())


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template (``/orders/{order_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE
