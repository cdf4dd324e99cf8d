"""What observing costs: creating orders on the distributed order service with metrics off
(``METRICS_ENABLED=false``), with metrics on (the default), and with metrics on and tracing
at a 0.1 sampling ratio (``parentbased_traceidratio``) exporting OTLP/HTTP to a sink here.

The three order services run side by side on one user service, Redis and database, and are
loaded in turn, round after round of short loads (each round starting one variant further
on), so that whatever else the machine does falls on all three alike. Two figures per
variant: throughput, and the order service's CPU time per created order (from ``/proc``),
the cost itself, which other work on the machine disturbs less than throughput. A variant
against another is the median over the rounds of their ratio within the round: the machine's
pace drifts between rounds far more than within one. Metrics on, the reference of both
comparisons, runs in two processes and counts as their mean; the one against the other says
how far two identical processes land apart in the same run."""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from bench.servers import uvicorn_server
from bench.wrk import run_wrk, write_requests, wrk_command
from devstack import RedisServer, ScratchDatabases

if TYPE_CHECKING:
    from bench.run import Run

ROUNDS = 6
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
        # Metrics on again, in a process of its own (see ``summarize``).
        "metrics_on_twin": {},
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
            "REDIS_SIGNING_KEY": secrets.token_urlsafe(32),
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
        file = write_requests(run.folder / "observability.requests", requests)
        rates: dict[str, list[float]] = {name: [] for name in orders}
        cpu_us: dict[str, list[float]] = {name: [] for name in orders}
        for server in orders.values():  # warm each up once
            run_wrk(wrk_command(run.wrk, server.url, file, connections=4, duration_s=2))
        names = list(orders)
        for round_number in range(rounds):
            # Each round starts one variant further on: none is always the one that follows
            # the same other, or runs first after the warm-up.
            start = round_number % len(names)
            for name in names[start:] + names[:start]:
                server = orders[name]
                ticks = cpu_ticks(server.pid)
                result = run_wrk(
                    wrk_command(
                        run.wrk,
                        server.url,
                        file,
                        connections=options.connections,
                        duration_s=options.duration_s / 2,
                    )
                )
                used_s = (cpu_ticks(server.pid) - ticks) / TICKS_PER_S
                per_order = used_s / max(1, result.requests) * 1e6
                rates[name].append(result.rps)
                cpu_us[name].append(per_order)
                print(
                    f"  observability.{name}.{round_number + 1:<4} {result.rps:8.1f} rps"
                    f"  {per_order:7.1f} us CPU per order  errors {result.errors}",
                    flush=True,
                )
        if options.profile == "create_order":
            # After the measured rounds: py-spy's sampling costs the process it samples CPU.
            for name, server in orders.items():
                with bench_run._profiled(
                    server.pid, run.folder / f"profile-observability-{name}", options.duration_s
                ):
                    run_wrk(
                        wrk_command(
                            run.wrk,
                            server.url,
                            file,
                            connections=options.connections,
                            duration_s=options.duration_s,
                        )
                    )
    run.extras["observability"] = summarize(rates, cpu_us)
    print(format_summary(run.extras["observability"]), flush=True)


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User and system CPU time of a process so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def paired(figures: dict[str, list[float]], name: str, against: str) -> float:
    """The median over the rounds of ``name``'s figure over ``against``'s in the same round."""
    return statistics.median(a / b for a, b in zip(figures[name], figures[against], strict=True))


def summarize(rates: dict[str, list[float]], cpu_us: dict[str, list[float]]) -> dict[str, Any]:
    # Metrics on runs in two processes, whose figures differ by as much as the variants do
    # (each process has its own luck with the machine): each round, metrics on is their mean,
    # what the other variants are compared with; their ratio is the noise of this run.
    rates = {**rates, ON: _mean_on(rates)}
    cpu_us = {**cpu_us, ON: _mean_on(cpu_us)}
    rps = {name: statistics.median(values) for name, values in rates.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_us.items()}
    return {
        "rounds_rps": {name: [round(v, 1) for v in values] for name, values in rates.items()},
        "rounds_cpu_us": {name: [round(v, 1) for v in values] for name, values in cpu_us.items()},
        "median_rps": {name: round(value, 1) for name, value in rps.items()},
        "median_cpu_us_per_order": {name: round(value, 1) for name, value in cpu.items()},
        # Throughput as a share of the compared variant's (1.0: no loss), round by round.
        "rps_metrics_on_vs_off": round(paired(rates, ON, "metrics_off"), 3),
        "rps_tracing_vs_metrics_on": round(paired(rates, "tracing_0.1", ON), 3),
        # CPU per order as a share of the compared variant's (1.0: no extra cost).
        "cpu_metrics_on_vs_off": round(paired(cpu_us, ON, "metrics_off"), 3),
        "cpu_tracing_vs_metrics_on": round(paired(cpu_us, "tracing_0.1", ON), 3),
        # The two processes of metrics on, one against the other: the same code.
        "rps_twin_vs_metrics_on": round(paired(rates, "metrics_on_twin", "metrics_on"), 3),
        "cpu_twin_vs_metrics_on": round(paired(cpu_us, "metrics_on_twin", "metrics_on"), 3),
    }


# Metrics on, both processes: their mean, round by round.
ON = "metrics_on_mean"


def _mean_on(figures: dict[str, list[float]]) -> list[float]:
    pairs = zip(figures["metrics_on"], figures["metrics_on_twin"], strict=True)
    return [(a + b) / 2 for a, b in pairs]


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["  observability, create_order (medians over rounds; ratios paired by round):"]
    for name, value in summary["median_rps"].items():
        cpu = summary["median_cpu_us_per_order"][name]
        lines.append(f"    {name:<14} {value:>9.1f} rps  {cpu:>8.1f} us CPU per order")
    for key in (
        "rps_metrics_on_vs_off",
        "rps_tracing_vs_metrics_on",
        "cpu_metrics_on_vs_off",
        "cpu_tracing_vs_metrics_on",
        "rps_twin_vs_metrics_on",
        "cpu_twin_vs_metrics_on",
    ):
        lines.append(f"    {key:<28} {summary[key]:.3f}")
    return "\n".join(lines)
