"""The cost of one created order, per part: ``.venv/bin/python -m bench.capacity``.

For docs/scaling.md. Starts the distributed deployment as the tests do
(``tests.support.distributed``), logs some users in (so they are in the cache, as in
``make bench``'s create_order), and creates orders without an ``Idempotency-Key`` (the
group-committed path) with ``--concurrency`` requests in flight, sent by wrk when it is
installed (as ``make bench`` does), else by a Python client. Reports, per order: CPU
of the order service, the user service and Redis (``/proc/<pid>/stat``), Postgres commits
on the order database (``pg_stat_database``), and Redis commands (``INFO commandstats``).
CPU per order does not depend on what else the shared machine runs as much as requests per
second do; compare only figures of the same run all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop

from bench.fanout import PASSWORD, command_counts, cpu_seconds
from tests.support.distributed import ADMIN_DSN, DistributedStack, distributed_stack

TOKEN = "bench-capacity-internal-token"
ORDER = {"currency": "EUR", "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}]}


async def tokens(stack: DistributedStack, count: int) -> list[str]:
    found = []
    async with httpx.AsyncClient(base_url=stack.user_service.url, timeout=30.0) as http:
        for _ in range(count):
            email = f"capacity-{uuid.uuid4().hex[:12]}@example.com"
            body = {"email": email, "password": PASSWORD, "full_name": "Capacity"}
            (await http.post("/users", json=body)).raise_for_status()
            login = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
            login.raise_for_status()
            found.append(login.json()["access_token"])
    return found


async def commits(database: str) -> int:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database
        )
    finally:
        await conn.close()
    return int(value)


async def orders(url: str, bearer: list[str], count: int, concurrency: int) -> None:
    remaining = count
    turn = itertools.cycle(bearer)
    async with httpx.AsyncClient(
        base_url=url, timeout=30.0, limits=httpx.Limits(max_connections=concurrency)
    ) as http:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                headers = {"Authorization": f"Bearer {next(turn)}"}
                answer = await http.post("/orders", json=ORDER, headers=headers)
                if answer.status_code != 201:
                    raise RuntimeError(f"{answer.status_code}: {answer.text}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def wrk_orders(url: str, token: str, seconds: int, concurrency: int, folder: Path) -> int:
    """Orders created by wrk (one thread) in ``seconds``; every answer must be a 201."""
    script = folder / "orders.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(ORDER))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    wrk = shutil.which("wrk")
    assert wrk is not None
    result = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script), f"{url}/orders"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(result.stdout)
    match = re.search(r"(\d+) requests in", result.stdout)
    assert match is not None, result.stdout
    return int(match.group(1))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as folder:
        async with distributed_stack(Path(folder), internal_token=TOKEN) as stack:
            bearer = await tokens(stack, args.users)
            url = stack.order_service.url
            await orders(url, bearer, 500, args.concurrency)  # warm up
            await asyncio.sleep(1.5)  # Postgres publishes its counters about once a second
            pids = {
                "order_service": stack.order_service.pid,
                "user_service": stack.user_service.pid,
                "redis": stack.redis.pid,
            }
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            before_commits = await commits(stack.order_database)
            before_commands = await command_counts(stack)
            started = time.perf_counter()
            if shutil.which("wrk") is None:  # a Python client: it takes a core of its own
                n = args.orders
                await orders(url, bearer, n, args.concurrency)
                driver = "httpx"
            else:
                n = await asyncio.to_thread(
                    wrk_orders, url, bearer[0], args.seconds, args.concurrency, Path(folder)
                )
                driver = "wrk"
            seconds = time.perf_counter() - started
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
            after_commands = await command_counts(stack)
            await asyncio.sleep(1.5)
            committed = await commits(stack.order_database) - before_commits
    return {
        "load": driver,
        "orders": n,
        "concurrency": args.concurrency,
        "orders_per_s": round(n / seconds),
        "cpu_us_per_order": {k: round((after[k] - before[k]) / n * 1e6, 1) for k in after},
        "postgres_commits_per_order": round(committed / n, 3),
        "orders_per_commit": round(n / committed, 1) if committed else None,
        "redis_commands_per_order": {
            name: round((calls - before_commands.get(name, 0)) / n, 3)
            for name, calls in sorted(after_commands.items())
            if name != "info" and calls != before_commands.get(name, 0)
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000, help="without wrk")
    parser.add_argument("--seconds", type=int, default=10, help="with wrk")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    result = uvloop.run(run(args))
    for key, value in result.items():
        print(f"{key}: {value}")
    took = time.perf_counter() - started
    print(f"(python -m bench.capacity {' '.join(sys.argv[1:])}: {took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
