"""``make bench ARGS=--scale``: does the cost of each request stay flat as the data grows, and
does each service's memory stay bounded as users come and go?

On one distributed deployment (``bench.run.distributed``):
1. each service's resident memory after start (``VmRSS`` of ``/proc/<pid>/status``);
2. the run's workloads (``bench.run.WORKLOADS`` but logins, as ``--only`` narrows them) on
   the empty databases;
3. the bulk load of ``bench.bulk_load`` into the deployment's own databases, then
   ``VACUUM ANALYZE`` and ``CHECKPOINT``; the plans of the reads, which must find rows by index;
4. the same workloads again: each one's ratio to the ceiling against the empty run's;
5. one request from each loaded user to each service, both at once (``GET /orders?limit=1``
   and ``GET /users/me``), with access tokens the bench mints
   itself: the user service signs with a key the bench gave it (``JWT_PRIVATE_KEY``), as it
   would sign after a login, and a login per user (argon2) would take hours. Each user is
   new to both services: a token to check, the user's standing asked over the bus (a cache
   miss), remembered by the user service, written to the cache. Then resident memory again.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench import bulk_load
from bench.observability import TICKS_PER_S, cpu_ticks
from bench.wrk import Request, finish_wrk_once, start_wrk, write_requests, wrk_command

if TYPE_CHECKING:
    from bench.run import Deployment, Run

# Served by the user service; every other workload by the order service.
USER_SERVICE_WORKLOADS = ("read_me", "log_in")
# Not run here: a login's cost is argon2's, whatever the data (one row read by unique email),
# and its rate, a few dozen a second, moves more with the machine's other work than any
# effect of the data could.
SKIPPED_WORKLOADS = ("log_in",)
# A workload's rate on the loaded databases against the empty ones: at least this.
FLAT_WITHIN = 0.85
# Resident memory after every user's requests against after start: at most this.
MEMORY_GROWTH_MAX = 2.0
# Both services are visited at once, each pass by a wrk of its own. The user service's single
# worker answers its own pass and the order service's verifications: with as many connections
# on its own pass, those verifications queued past their timeout; with a few, each new user's
# verification waits behind at most a few requests.
MEMORY_CONNECTIONS = {"order_service": 16, "user_service": 4}
# The most one pass over every user may take; wrk stops as soon as every user was answered.
MEMORY_PASS_LIMIT_S = 1800


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def signing_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def mint_tokens(pem: str, user_ids: list[uuid.UUID]) -> list[str]:
    """Access tokens as the user service issues them at a login (its default issuer and
    audience, session epoch 0), valid for an hour."""
    from user_service.core.auth import TokenIssuer, signing_key_from_pem

    issuer = TokenIssuer(
        signing_key_from_pem(pem.encode()),
        issuer="user-service",
        audience="user-order-api",
        ttl_seconds=3600,
    )
    return [issuer.issue(user_id, client_id="bench-scale") for user_id in user_ids]


def password_hash(password: str) -> str:
    """One argon2id hash with the user service's parameters, for every loaded user."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from user_service.core.auth import normalize_password
    from user_service.core.config import OWASP_ARGON2_MEMORY_KIB, OWASP_ARGON2_TIME_COST

    hasher = Argon2Hasher(
        time_cost=OWASP_ARGON2_TIME_COST, memory_cost=OWASP_ARGON2_MEMORY_KIB, parallelism=1
    )
    return PasswordHash((hasher,)).hash(normalize_password(password))


def measure_workloads(
    run: Run, deployment: Deployment, accounts: list[Any], phase: str, ceiling_url: str
) -> None:
    """The workloads, after the ceiling: each phase's rates are compared as ratios to the
    ceiling measured just before them, so that the machine's other work between the two
    phases counts less."""
    from bench import run as bench_run

    options = run.options
    result = run.load(
        f"scale.{phase}.ceiling",
        ceiling_url,
        [Request("GET", "/ping", {})],
        connections=options.connections,
    )
    run.record(f"scale.{phase}", "ceiling", options.connections, result)
    for workload in bench_run.WORKLOADS:
        if workload in SKIPPED_WORKLOADS or not options.wants(workload):
            continue
        on_users = workload in USER_SERVICE_WORKLOADS
        connections = options.login_connections if workload == "log_in" else options.connections
        result = run.load(
            f"scale.{phase}.{workload}",
            deployment.users_url if on_users else deployment.orders_url,
            bench_run.workload_requests(workload, accounts),
            connections=connections,
        )
        run.record(f"scale.{phase}", workload, connections, result)


def visit_every_user(
    run: Run, deployment: Deployment, tokens: list[str], pids: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """One request per token to each service, both passes at once. Each pass: wrk's report,
    stopped as soon as every user was answered; and the CPU time each service spent over
    both passes, per user."""
    passes = {
        "order_service": (deployment.orders_url, "/orders?limit=1"),
        "user_service": (deployment.users_url, "/users/me"),
    }
    ticks = {name: cpu_ticks(pid) for name, pid in pids.items()}
    started = {}
    for service, (url, path) in passes.items():
        file = write_requests(
            run.folder / f"scale.memory.{service}.requests",
            [Request("GET", path, {"Authorization": f"Bearer {token}"}) for token in tokens],
        )
        started[service] = start_wrk(
            wrk_command(
                run.wrk,
                url,
                file,
                connections=MEMORY_CONNECTIONS[service],
                duration_s=MEMORY_PASS_LIMIT_S,
                once=True,
            )
        )
    with ThreadPoolExecutor(len(started)) as pool:
        finished = {name: pool.submit(finish_wrk_once, wrk) for name, wrk in started.items()}
        results = {name: future.result().as_dict() for name, future in finished.items()}
    cpu_ms = {
        name: round((cpu_ticks(pid) - ticks[name]) / TICKS_PER_S * 1000 / len(tokens), 2)
        for name, pid in pids.items()
    }
    for service, result in results.items():
        print(
            f"  {'scale.memory.' + service:<40} {result['requests']} requests, "
            f"{result['rps']:.1f} rps, p99 {result['p99_ms']:.1f} ms, errors {result['errors']}",
            flush=True,
        )
        result["cpu_ms_per_user"] = cpu_ms[service]
    print(f"  CPU per user over both passes (ms): {cpu_ms}", flush=True)
    return results


def measure_scale(run: Run, ceiling_url: str) -> None:
    from bench import run as bench_run

    options = run.options
    sizes = bulk_load.QUICK if options.quick else bulk_load.FULL
    pem = signing_key_pem()
    summary: dict[str, Any] = {"sizes": vars(sizes)}
    with bench_run.distributed(
        run, bench_run.ROOT, "scale", env={"JWT_PRIVATE_KEY": pem}
    ) as deployment:
        pids = {"user_service": deployment.user_pid, "order_service": deployment.order_pid}
        memory: dict[str, dict[str, int]] = {name: {} for name in pids}

        def note_memory(moment: str) -> None:
            for name, pid in pids.items():
                memory[name][moment] = rss_kib(pid)

        note_memory("after_start_kib")
        print(f"scale: creating {options.users} bench users", flush=True)
        accounts = bench_run.create_accounts(
            deployment.users_url, deployment.orders_url, options.users, 21
        )
        measure_workloads(run, deployment, accounts, "empty", ceiling_url)
        note_memory("after_empty_run_kib")

        databases = deployment.extra["databases"]
        users_dsn, orders_dsn = (
            bulk_load.asyncpg_dsn(databases.url(name)) for name in databases.names
        )
        user_ids = [uuid.uuid4() for _ in range(sizes.users)]
        print(
            f"scale: loading {sizes.orders} orders of {sizes.users_with_orders} users, "
            f"{sizes.users} users in all",
            flush=True,
        )
        loaded = bulk_load.load(
            users_dsn=users_dsn,
            orders_dsn=orders_dsn,
            sizes=sizes,
            user_ids=user_ids,
            accounts=[uuid.UUID(account.id) for account in accounts],
            password_hash=password_hash(bench_run.PASSWORD),
        )
        print(
            f"scale: loaded {loaded.counts} in {loaded.load_s:.0f}s, "
            f"VACUUM ANALYZE {loaded.vacuum_analyze_s:.0f}s",
            flush=True,
        )
        summary.update(
            loaded=loaded.counts, load_s=loaded.load_s, vacuum_analyze_s=loaded.vacuum_analyze_s
        )
        summary["plans"] = bulk_load.explain_reads(
            users_dsn=users_dsn, orders_dsn=orders_dsn, user_id=uuid.UUID(accounts[0].id)
        )
        for name, plan in summary["plans"].items():
            print(f"  plan of {name}: {', '.join(plan['nodes'])}", flush=True)

        measure_workloads(run, deployment, accounts, "loaded", ceiling_url)
        note_memory("after_loaded_run_kib")

        print(f"scale: minting tokens for {len(user_ids)} users", flush=True)
        minted = time.monotonic()
        tokens = mint_tokens(pem, user_ids)
        print(f"scale: minted in {time.monotonic() - minted:.0f}s; one request each", flush=True)
        visits = visit_every_user(run, deployment, tokens, pids)
        note_memory("after_users_kib")
    summary["workloads"] = compare_phases(run.results)
    summary["memory"] = {
        name: {
            **moments,
            "growth": round(moments["after_users_kib"] / moments["after_start_kib"], 2),
        }
        for name, moments in memory.items()
    }
    summary["memory_users"] = len(user_ids)
    summary["memory_requests"] = visits
    run.extras["scale"] = summary
    print(format_summary(summary), flush=True)


def compare_phases(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each workload's rate, as a ratio to its phase's ceiling, on the loaded databases over
    the same on the empty ones."""
    rates = {
        (row["deployment"], row["workload"]): row["rps"]
        for row in results
        if row["deployment"] in ("scale.empty", "scale.loaded")
    }
    empty_ceiling = rates.get(("scale.empty", "ceiling"), 0.0)
    loaded_ceiling = rates.get(("scale.loaded", "ceiling"), 0.0)
    compared = {}
    for (phase, workload), empty in rates.items():
        loaded = rates.get(("scale.loaded", workload))
        if phase != "scale.empty" or workload == "ceiling" or loaded is None:
            continue
        if empty and empty_ceiling and loaded_ceiling:
            empty_ratio, loaded_ratio = empty / empty_ceiling, loaded / loaded_ceiling
            compared[workload] = {
                "empty_rps": empty,
                "loaded_rps": loaded,
                "empty_ratio": round(empty_ratio, 4),
                "loaded_ratio": round(loaded_ratio, 4),
                "loaded_over_empty": round(loaded_ratio / empty_ratio, 3),
            }
    return compared


def targets(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for ``--scale``, each with its measured figure."""
    found = []
    for workload, row in scale.get("workloads", {}).items():
        found.append(
            {
                "target": f"{workload} on {scale['loaded']['orders']} orders: rate >= "
                f"{FLAT_WITHIN} of the empty databases'",
                "measured": f"x{row['loaded_over_empty']:.3f} (of the ceiling: "
                f"{row['loaded_ratio']:.3f} vs {row['empty_ratio']:.3f})",
                "met": row["loaded_over_empty"] >= FLAT_WITHIN,
            }
        )
    for name, moments in scale.get("memory", {}).items():
        requests = scale["memory_requests"][name]
        found.append(
            {
                "target": f"{name} resident memory after {scale['memory_users']} users <= "
                f"{MEMORY_GROWTH_MAX:g}x after start",
                "measured": f"{moments['after_start_kib'] / 1024:.0f} MiB -> "
                f"{moments['after_users_kib'] / 1024:.0f} MiB: x{moments['growth']:.2f}; "
                f"{requests['requests']} requests, {requests['errors']} errors",
                "met": moments["growth"] <= MEMORY_GROWTH_MAX
                and requests["requests"] >= scale["memory_users"],
            }
        )
    plans = scale.get("plans", {})
    if plans:
        scans = {name: plan["seq_scans"] for name, plan in plans.items() if plan["seq_scans"]}
        found.append(
            {
                "target": "reads at scale use an index (no Seq Scan, planned as the services plan)",
                "measured": f"sequential scans: {scans}" if scans else "none",
                "met": not scans,
            }
        )
    return found


def format_summary(scale: dict[str, Any]) -> str:
    lines = [
        f"scale: loaded {scale['loaded']} in {scale['load_s']:.0f}s "
        f"(VACUUM ANALYZE {scale['vacuum_analyze_s']:.0f}s)",
        f"  {'workload':<20} {'empty rps':>10} {'loaded rps':>11} {'empty ratio':>12} "
        f"{'loaded ratio':>13} {'loaded/empty':>13}",
    ]
    for workload, row in scale["workloads"].items():
        lines.append(
            f"  {workload:<20} {row['empty_rps']:>10.1f} {row['loaded_rps']:>11.1f} "
            f"{row['empty_ratio']:>12.3f} {row['loaded_ratio']:>13.3f} "
            f"{row['loaded_over_empty']:>13.3f}"
        )
    lines.append(f"  resident memory (MiB), {scale['memory_users']} users")
    for name, moments in scale["memory"].items():
        steps = ", ".join(
            f"{moment.removesuffix('_kib')} {kib / 1024:.0f}"
            for moment, kib in moments.items()
            if moment.endswith("_kib")
        )
        lines.append(f"    {name:<14} {steps}: x{moments['growth']:.2f}")
    for name, visit in scale["memory_requests"].items():
        lines.append(
            f"  one request per user to the {name}: {visit['rps']:.0f} rps, "
            f"p99 {visit['p99_ms']:.0f} ms, {visit['errors']} errors; "
            f"{visit['cpu_ms_per_user']} ms of its CPU per user (both passes)"
        )
    return "\n".join(lines)
