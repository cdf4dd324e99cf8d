"""The benchmark run: ceiling, both deployments, verification, fairness; then the reports.

``python -m bench [--quick] [--only NAME ...] [--profile WORKLOAD] [--compare DIR] [--accept]``
``python -m bench --compare DIR --rounds N [--only WORKLOAD ...]``: both checkouts up at once,
loaded in turn for N rounds; each workload's after/before is the median of the rounds' ratios.
``python -m bench --scale [--quick] [--only WORKLOAD ...]``: the distributed workloads on empty
databases, then on a million orders, and memory after 200,000 users (bench/scale.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.observability import TICKS_PER_S, cpu_ticks, measure_observability, paired
from bench.scale import measure_scale
from bench.servers import uvicorn_server
from bench.wrk import (
    Request,
    WrkResult,
    ensure_wrk,
    finish_wrk,
    run_wrk,
    start_wrk,
    write_requests,
    wrk_command,
)
from devstack import DEFAULT_ADMIN_DSN, RedisServer, ScratchDatabases

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench password, long enough"
ORDER_BODY = json.dumps(
    {
        "currency": "EUR",
        "items": [
            {"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"},
            {"sku": "PEN-9", "quantity": 3, "unit_price": "0.99"},
        ],
    },
    separators=(",", ":"),
)
WORKLOADS = (
    "create_order",
    "create_order_keyed",
    "list_orders",
    "read_order",
    "read_me",
    "log_in",
)
# The login limiter would answer a login storm from one address with 429s within a second:
# the benchmark measures logins (argon2) themselves, so it lifts the limits.
SERVICE_ENV = {
    "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "1000000",
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": "10000",
}
ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", DEFAULT_ADMIN_DSN)


@dataclass(frozen=True)
class Options:
    quick: bool
    duration_s: float
    warmup_s: float
    connections: int
    login_connections: int
    fairness_connections: int
    users: int
    verification_rounds: int
    only: tuple[str, ...]
    profile: str | None
    compare: Path | None
    accept: bool
    deployments: tuple[str, ...]
    scale: bool = False
    rounds: int = 0

    def wants(self, name: str) -> bool:
        return not self.only or name in self.only


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs: under two minutes")
    parser.add_argument("--duration", type=float, help="seconds per workload (10; quick 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--login-connections", type=int, default=16)
    parser.add_argument("--fairness-connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        choices=[*WORKLOADS, "verification", "fairness", "observability"],
        help="run only these parts (the ceiling always runs)",
    )
    parser.add_argument(
        "--deployments",
        nargs="+",
        default=["single", "distributed"],
        choices=["single", "distributed"],
    )
    parser.add_argument(
        "--profile", choices=WORKLOADS, help="py-spy the server under this workload"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="also run the deployments from this checkout (e.g. a `git archive` of main)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="with --compare: both checkouts up at once, loaded in turn for this many rounds",
    )
    parser.add_argument("--accept", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="instead: the distributed workloads before and after a bulk load, and memory",
    )
    args = parser.parse_args(argv)
    if args.rounds and args.compare is None:
        parser.error("--rounds compares: it needs --compare")
    duration = args.duration or (3.0 if args.quick else 10.0)
    return Options(
        quick=args.quick,
        duration_s=duration,
        warmup_s=1.0 if args.quick else 3.0,
        connections=args.connections,
        login_connections=args.login_connections,
        fairness_connections=args.fairness_connections,
        users=args.users,
        verification_rounds=300 if args.quick else 2000,
        only=tuple(args.only),
        profile=args.profile,
        compare=args.compare.resolve() if args.compare else None,
        accept=args.accept,
        deployments=tuple(args.deployments),
        scale=args.scale,
        rounds=args.rounds,
    )


@dataclass
class Deployment:
    name: str
    users_url: str
    orders_url: str
    user_pid: int
    order_pid: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Account:
    id: str
    email: str
    token: str
    order_ids: list[str] = field(default_factory=list)


@dataclass
class Run:
    options: Options
    wrk: str
    folder: Path
    results: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def load(
        self,
        label: str,
        url: str,
        requests: list[Request],
        *,
        connections: int,
        duration_s: float | None = None,
        profile_pid: int | None = None,
    ) -> WrkResult:
        file = write_requests(self.folder / f"{label}.requests", requests)
        duration = duration_s or self.options.duration_s
        if self.options.warmup_s:
            run_wrk(
                wrk_command(
                    self.wrk, url, file, connections=connections, duration_s=self.options.warmup_s
                )
            )
        with _profiled(profile_pid, self.folder / f"profile-{label}", duration):
            result = run_wrk(
                wrk_command(self.wrk, url, file, connections=connections, duration_s=duration)
            )
        print(f"  {label:<40} {report.format_result(result)}", flush=True)
        return result

    def record(self, deployment: str, workload: str, connections: int, result: WrkResult) -> None:
        self.results.append(
            {
                "deployment": deployment,
                "workload": workload,
                "connections": connections,
                **result.as_dict(),
            }
        )


@contextlib.contextmanager
def _profiled(pid: int | None, stem: Path, duration_s: float) -> Iterator[None]:
    """py-spy (sampling, from outside the process) while the block runs. It pauses the
    process for each sample: whole stacks, at some cost to the rate measured meanwhile."""
    if pid is None:
        yield
        return
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(duration_s))),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            f"{stem}.txt",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        spy.wait(30)
        print(f"  profile written to {stem}.txt", flush=True)


def create_accounts(users_url: str, orders_url: str, count: int, orders_each: int) -> list[Account]:
    """Register, log in (which fills the user cache), and give each user a page of orders."""
    accounts = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            email = f"bench-{secrets.token_hex(6)}@example.com"
            created = client.post(
                f"{users_url}/users",
                json={"email": email, "password": PASSWORD, "full_name": "Bench"},
            )
            created.raise_for_status()
            token = client.post(
                f"{users_url}/auth/token", data={"username": email, "password": PASSWORD}
            )
            token.raise_for_status()
            accounts.append(Account(created.json()["id"], email, token.json()["access_token"]))
        for account in accounts:
            for _ in range(orders_each):
                placed = client.post(
                    f"{orders_url}/orders",
                    content=ORDER_BODY,
                    headers={**_bearer(account), "Content-Type": "application/json"},
                )
                placed.raise_for_status()
                account.order_ids.append(placed.json()["id"])
    return accounts


def _bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def workload_requests(workload: str, accounts: list[Account]) -> list[Request]:
    json_body = {"Content-Type": "application/json"}
    if workload == "create_order":
        return [
            Request("POST", "/orders", {**_bearer(a), **json_body}, ORDER_BODY) for a in accounts
        ]
    if workload == "create_order_keyed":
        # A fresh Idempotency-Key on every request (bench/wrk/requests.lua), as clients send.
        fresh = {"Idempotency-Key": "{fresh}"}
        return [
            Request("POST", "/orders", {**_bearer(a), **json_body, **fresh}, ORDER_BODY)
            for a in accounts
        ]
    if workload == "list_orders":
        return [Request("GET", "/orders?limit=20", _bearer(a)) for a in accounts]
    if workload == "read_order":
        return [Request("GET", f"/orders/{a.order_ids[-1]}", _bearer(a)) for a in accounts]
    if workload == "read_me":
        return [Request("GET", "/users/me", _bearer(a)) for a in accounts]
    if workload == "log_in":
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return [
            Request(
                "POST",
                "/auth/token",
                form,
                urllib.parse.urlencode({"username": a.email, "password": PASSWORD}),
            )
            for a in accounts
        ]
    raise ValueError(workload)


def measure_deployment(run: Run, deployment: Deployment) -> None:
    options = run.options
    print(f"{deployment.name}: creating {options.users} users", flush=True)
    accounts = create_accounts(deployment.users_url, deployment.orders_url, options.users, 21)
    for workload in WORKLOADS:
        if not options.wants(workload):
            continue
        on_users = workload in ("read_me", "log_in")
        url = deployment.users_url if on_users else deployment.orders_url
        pid = deployment.user_pid if on_users else deployment.order_pid
        connections = options.login_connections if workload == "log_in" else options.connections
        result = run.load(
            f"{deployment.name}.{workload}",
            url,
            workload_requests(workload, accounts),
            connections=connections,
            profile_pid=pid if options.profile == workload else None,
        )
        run.record(deployment.name, workload, connections, result)
    if options.wants("fairness"):
        measure_fairness(run, deployment, accounts)
    if options.wants("verification") and "redis_port" in deployment.extra:
        print("  verification micro-benchmark", flush=True)
        run.extras["verification"] = verification_on(
            deployment.extra["code_dir"],
            deployment.extra["redis_port"],
            deployment.users_url,
            deployment.extra["internal_token"],
            [a.id for a in accounts],
            options.verification_rounds,
            signing_key=deployment.extra["signing_key"],
        )
        print(report.format_verification(run.extras["verification"]), flush=True)


# Runs ``bench.verification`` of the checkout it is started in, on that checkout's code.
_VERIFICATION = (
    "import json, sys\n"
    "from bench.verification import measure_verification\n"
    "print(json.dumps(measure_verification(*json.loads(sys.argv[1]))))\n"
)


def verification_on(code_dir: Path, *args: Any, signing_key: str) -> dict[str, Any]:
    """The verification micro-benchmark in a process of its own, on ``code_dir``'s code: the
    asking side (the order service's verifier and bus) is then the compared checkout's too,
    not this one's. The services' signing key goes in the environment, where a checkout from
    before the tags does not look."""
    done = subprocess.run(
        [sys.executable, "-c", _VERIFICATION, json.dumps(args)],
        cwd=code_dir,
        env={**os.environ, "PYTHONPATH": str(code_dir), "REDIS_SIGNING_KEY": signing_key},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"verification benchmark failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_fairness(run: Run, deployment: Deployment, accounts: list[Account]) -> None:
    """p99 of listing orders, idle and while a second wrk logs in flat out."""
    options = run.options
    connections = options.fairness_connections
    listing = workload_requests("list_orders", accounts)
    idle = run.load(
        f"{deployment.name}.list_orders.idle",
        deployment.orders_url,
        listing,
        connections=connections,
    )
    run.record(deployment.name, "list_orders_idle", connections, idle)
    login_file = write_requests(
        run.folder / f"{deployment.name}.storm.requests", workload_requests("log_in", accounts)
    )
    list_file = write_requests(run.folder / f"{deployment.name}.fair.requests", listing)
    lead_s = 1.0
    storm = start_wrk(
        wrk_command(
            run.wrk,
            deployment.users_url,
            login_file,
            connections=options.login_connections,
            duration_s=options.duration_s + 2 * lead_s,
        )
    )
    time.sleep(lead_s)
    during = run_wrk(
        wrk_command(
            run.wrk,
            deployment.orders_url,
            list_file,
            connections=connections,
            duration_s=options.duration_s,
        )
    )
    logins = finish_wrk(storm)
    print(
        f"  {deployment.name + '.list_orders.storm':<40} {report.format_result(during)}", flush=True
    )
    print(f"  {deployment.name + '.log_in.storm':<40} {report.format_result(logins)}", flush=True)
    run.record(deployment.name, "list_orders_storm", connections, during)
    run.record(deployment.name, "log_in_storm", options.login_connections, logins)


@contextlib.contextmanager
def single_process(
    run: Run, code_dir: Path, label: str, wrapper: Sequence[str] = ()
) -> Iterator[Deployment]:
    """``wrapper``: a command line that runs the server (bench/instructions.py)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-single-") as data,
        uvicorn_server(
            label,
            "app.main:app",
            code_dir=code_dir,
            env={**SERVICE_ENV, "DATA_DIR": data},
            log_dir=run.folder,
            wrapper=wrapper,
        ) as server,
    ):
        yield Deployment(label, server.url, server.url, server.pid, server.pid)


@contextlib.contextmanager
def distributed(
    run: Run,
    code_dir: Path,
    label: str,
    env: Mapping[str, str] | None = None,
    wrapper: Sequence[str] = (),
) -> Iterator[Deployment]:
    """``env``: more environment for both services; ``wrapper``: a command line that runs
    each of them (bench/instructions.py)."""
    internal = secrets.token_urlsafe(24)
    signing_key = secrets.token_urlsafe(32)
    databases = ScratchDatabases.unique(ADMIN_DSN, "bench", "users", "orders")
    users_url, orders_url = (databases.url(name) for name in databases.names)
    with contextlib.ExitStack() as stack:
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dist-"))
        redis_port = stack.enter_context(RedisServer.on_free_port(run.folder).serving()).port
        stack.enter_context(databases.created())
        common = {
            **SERVICE_ENV,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_port),
            "INTERNAL_API_TOKEN": internal,
            "REDIS_SIGNING_KEY": signing_key,
            "DATA_DIR": data,
            **(env or {}),
        }
        users = stack.enter_context(
            uvicorn_server(
                f"{label}.user_service",
                "user_service.main:app",
                code_dir=code_dir,
                env={**common, "DATABASE_URL": users_url},
                log_dir=run.folder,
                wrapper=wrapper,
            )
        )
        orders = stack.enter_context(
            uvicorn_server(
                f"{label}.order_service",
                "order_service.main:app",
                code_dir=code_dir,
                env={**common, "DATABASE_URL": orders_url, "USER_SERVICE_URL": users.url},
                log_dir=run.folder,
                wrapper=wrapper,
            )
        )
        yield Deployment(
            label,
            users.url,
            orders.url,
            users.pid,
            orders.pid,
            {
                "redis_port": redis_port,
                "internal_token": internal,
                "signing_key": signing_key,
                "code_dir": code_dir,
                "databases": databases,
            },
        )


def compare_in_rounds(run: Run, before: Path) -> dict[str, Any]:
    """Both checkouts' deployments at once, each workload of each loaded in turn for
    ``rounds`` rounds of ``duration`` seconds, the order rotating every round: a drift of the
    machine (on a shared one, tens of percent within minutes) then falls on both alike. Each
    round gives after/before ratios of throughput and of the server's CPU per request; the
    figures are their medians."""
    options = run.options
    loads: dict[str, tuple[str, Path, int]] = {}
    with contextlib.ExitStack() as stack:
        for kind in options.deployments:
            factory = single_process if kind == "single" else distributed
            for side, code_dir in (("before", before), ("after", ROOT)):
                deployment = stack.enter_context(factory(run, code_dir, f"{side}:{kind}"))
                accounts = create_accounts(
                    deployment.users_url, deployment.orders_url, options.users, 21
                )
                for workload in WORKLOADS:
                    if not options.wants(workload) or workload == "log_in":
                        continue  # argon2 by design: a login measures the hash, not the code
                    on_users = workload == "read_me"
                    label = f"{side}:{kind}.{workload}"
                    loads[label] = (
                        deployment.users_url if on_users else deployment.orders_url,
                        write_requests(
                            run.folder / f"{label}.requests", workload_requests(workload, accounts)
                        ),
                        deployment.user_pid if on_users else deployment.order_pid,
                    )
        rps: dict[str, list[float]] = {label: [] for label in loads}
        cpu_us: dict[str, list[float]] = {label: [] for label in loads}
        labels = list(loads)
        for label in labels:  # warm each up
            url, file, _ = loads[label]
            run_wrk(wrk_command(run.wrk, url, file, connections=options.connections, duration_s=2))
        for n in range(options.rounds):
            for label in labels[n % len(labels) :] + labels[: n % len(labels)]:
                url, file, pid = loads[label]
                ticks = cpu_ticks(pid)
                result = run_wrk(
                    wrk_command(
                        run.wrk,
                        url,
                        file,
                        connections=options.connections,
                        duration_s=options.duration_s,
                    )
                )
                used_us = (cpu_ticks(pid) - ticks) / TICKS_PER_S * 1e6
                rps[label].append(result.rps)
                cpu_us[label].append(used_us / max(result.requests, 1))
                print(f"  round {n + 1} {label:<36} {report.format_result(result)}", flush=True)
    summary: dict[str, Any] = {"rounds": options.rounds, "seconds": options.duration_s}
    for label in labels:
        if not label.startswith("after:"):
            continue
        name = label.removeprefix("after:")
        was = f"before:{name}"
        summary[name] = {
            "rps_after_over_before": round(paired(rps, label, was), 3),
            "cpu_after_over_before": round(paired(cpu_us, label, was), 3),
            "rounds_rps": {"before": rps[was], "after": rps[label]},
            "rounds_cpu_us": {
                "before": [round(v, 1) for v in cpu_us[was]],
                "after": [round(v, 1) for v in cpu_us[label]],
            },
        }
    return summary


def measure_ceiling(run: Run, url: str, label: str) -> WrkResult:
    result = run.load(
        label, url, [Request("GET", "/ping", {})], connections=run.options.connections
    )
    run.record("ceiling", label, run.options.connections, result)
    return result


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit + ("-dirty" if dirty else ""),
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    wrk = ensure_wrk()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = RESULTS / stamp
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(options, wrk, folder)
    command = "make bench" + (" ARGS='" + " ".join(sys.argv[1:]) + "'" if sys.argv[1:] else "")
    print(f"bench: results in {folder}", flush=True)
    with uvicorn_server(
        "ceiling",
        "bench.ceiling_app:app",
        code_dir=ROOT,
        env={},
        log_dir=folder,
        ready_path="/ping",
    ) as ceiling:
        ceilings = [measure_ceiling(run, ceiling.url, "ceiling.before")]
        sources = [("", ROOT)]
        if options.compare is not None:
            sources.insert(0, ("before:", options.compare))
        parts = (*WORKLOADS, "verification", "fairness")
        if options.scale:
            measure_scale(run, ceiling.url)
        if options.rounds and options.compare is not None:
            run.extras["compare_rounds"] = compare_in_rounds(run, options.compare)
            print(report.format_compare(run.extras["compare_rounds"]), flush=True)
            sources = []
        for prefix, code_dir in (
            sources if any(map(options.wants, parts)) and not options.scale else ()
        ):
            for kind in options.deployments:
                factory = single_process if kind == "single" else distributed
                with factory(run, code_dir, prefix + kind) as deployment:
                    measure_deployment(run, deployment)
        if options.wants("observability") and not options.scale:
            measure_observability(run, ADMIN_DSN, SERVICE_ENV)
        ceilings.append(measure_ceiling(run, ceiling.url, "ceiling.after"))
    data = report.build(
        results=run.results,
        ceilings=ceilings,
        extras=run.extras,
        machine=machine(),
        command=command,
        options={k: str(v) for k, v in vars(options).items()},
        elapsed_s=time.monotonic() - started,
    )
    report.write(folder, data)
    latest = RESULTS / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(folder.name)
    print(report.table(data), flush=True)
    print(f"bench: report {folder / 'report.json'}, chart {folder / 'chart.png'}", flush=True)
    if options.accept:
        report.write_docs(ROOT / "docs" / "benchmarks.md", data)
        print("bench: docs/benchmarks.md updated", flush=True)
    print(f"bench: done in {time.monotonic() - started:.0f}s", flush=True)
    return 0
