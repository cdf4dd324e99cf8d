"""What observing costs: creating orders on the distributed order service with metrics off
(``METRICS_ENABLED=false``), with metrics on (the default), and with metrics on and tracing
at a 0.1 sampling ratio (``parentbased_traceidratio``) exporting OTLP/HTTP to a sink here.

The three order services run side by side on one user service, Redis and database, and are
loaded in turn, round after round, so that whatever else the machine does falls on all
three alike; each variant's figure is its median over the rounds."""

from __future__ import annotations

import contextlib
import secrets
import statistics
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from bench.servers import uvicorn_server
from devstack import RedisServer, ScratchDatabases

if TYPE_CHECKING:
    from bench.run import Run

ROUNDS = 3
QUICK_ROUNDS = 2


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every export and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def variants(sink: str) -> dict[str, dict[str, str]]:
    return {
        "metrics_off": {"METRICS_ENABLED": "false"},
        "metrics_on": {},
        "tracing_0.1": {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    }


def measure_observability(run: Run, admin_dsn: str, service_env: dict[str, str]) -> None:
    from bench import run as bench_run

    options = run.options
    rounds = QUICK_ROUNDS if options.quick else ROUNDS
    internal = secrets.token_urlsafe(24)
    databases = ScratchDatabases.unique(admin_dsn, "bench", "obs_users", "obs_orders")
    users_db, orders_db = (databases.url(name) for name in databases.names)
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(otlp_sink())
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-obs-"))
        redis_port = stack.enter_context(RedisServer.on_free_port(run.folder).serving()).port
        stack.enter_context(databases.created())
        common = {
            **service_env,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_port),
            "INTERNAL_API_TOKEN": internal,
            "DATA_DIR": data,
        }
        users = stack.enter_context(
            uvicorn_server(
                "observability.user_service",
                "user_service.main:app",
                code_dir=bench_run.ROOT,
                env={**common, "DATABASE_URL": users_db},
                log_dir=run.folder,
            )
        )
        orders = {
            name: stack.enter_context(
                uvicorn_server(
                    f"observability.order_service.{name}",
                    "order_service.main:app",
                    code_dir=bench_run.ROOT,
                    env={
                        **common,
                        **env,
                        "DATABASE_URL": orders_db,
                        "USER_SERVICE_URL": users.url,
                    },
                    log_dir=run.folder,
                )
            )
            for name, env in variants(sink).items()
        }
        print(f"observability: creating {options.users} users", flush=True)
        first = next(iter(orders.values()))
        accounts = bench_run.create_accounts(users.url, first.url, options.users, 1)
        requests = bench_run.workload_requests("create_order", accounts)
        rates: dict[str, list[float]] = {name: [] for name in orders}
        for round_number in range(rounds):
            for name, server in orders.items():
                result = run.load(
                    f"observability.{name}.{round_number + 1}",
                    server.url,
                    requests,
                    connections=options.connections,
                )
                run.record("observability", f"create_order.{name}", options.connections, result)
                rates[name].append(result.rps)
    run.extras["observability"] = summarize(rates)
    print(format_summary(run.extras["observability"]), flush=True)


def summarize(rates: dict[str, list[float]]) -> dict[str, Any]:
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "rounds": {name: [round(v, 1) for v in values] for name, values in rates.items()},
        "median_rps": {name: round(value, 1) for name, value in median.items()},
        # Throughput kept, as a share of the variant it is compared with.
        "metrics_on_vs_off": round(median["metrics_on"] / median["metrics_off"], 3),
        "tracing_vs_metrics_on": round(median["tracing_0.1"] / median["metrics_on"], 3),
        "tracing_vs_metrics_off": round(median["tracing_0.1"] / median["metrics_off"], 3),
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["  observability, create_order (median req/s over rounds):"]
    for name, value in summary["median_rps"].items():
        lines.append(f"    {name:<14} {value:>9.1f}   rounds {summary['rounds'][name]}")
    lines.append(f"    metrics on / off:           {summary['metrics_on_vs_off']:.3f}")
    lines.append(f"    tracing 0.1 / metrics on:   {summary['tracing_vs_metrics_on']:.3f}")
    lines.append(f"    tracing 0.1 / metrics off:  {summary['tracing_vs_metrics_off']:.3f}")
    return "\n".join(lines)
