"""What one ``verify_user`` request costs as user-service replicas grow.

``.venv/bin/python -m bench.fanout`` (options: ``--help``). Pub/sub hands every message on
``verify_user`` to every subscriber, so each user-service replica reads every request,
answers it on ``user_verification_response`` and refreshes ``user:{id}``. This starts the
distributed deployment as the tests do (``tests.support.distributed``: private Redis, scratch
Postgres, the services run with their images' command), registers some users, and sends
``verify_user`` requests through the Order Service's own verifier (``CachedBusUserVerifier``
over ``RedisBus``, with a cache that always misses, so every request goes to the bus), with
1, 2 and 4 user-service replicas. Per request it reports:

- replies: ``PUBLISH`` calls Redis counted, less the requests themselves;
- Redis commands, by name (``INFO commandstats``);
- CPU seconds of the user-service processes together, of Redis, and of this process (the
  asker), from ``/proc/<pid>/stat``.

Then the part of a proposal that can be measured without changing the services: one
replica answers, the others only receive the message and drop it after a look at its user
id (``--listeners``: processes that subscribe to ``verify_user`` with exactly that handler,
beside one answering replica). Their CPU per request is what each non-answering replica
would still pay (docs/scaling.md).

Every number depends on this machine and its load: compare only figures of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvloop

from contracts import VERIFY_USER_CHANNEL
from order_service.adapters.user_verifier import CachedBusUserVerifier
from servicekit.cache import InMemoryCache
from servicekit.redis import create_redis
from servicekit.redis_bus import RedisBus
from tests.support.distributed import DistributedStack, distributed_stack

TOKEN = "bench-fanout-internal-token"
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[1]
USER_ID_FIELD = b'"user_id":"'


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    # Fields 14 and 15 of proc(5) (utime, stime); field 3 is the first after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def command_counts(stack: DistributedStack) -> dict[str, int]:
    async with stack.redis.client() as client:
        stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


@dataclass
class Sample:
    replicas: int
    listeners: int
    requests: int
    seconds: float
    user_service_cpu: float
    listener_cpu: float
    redis_cpu: float
    asker_cpu: float
    commands: dict[str, int]

    def row(self) -> dict[str, Any]:
        per = self.requests
        publishes = self.commands.get("publish", 0)
        return {
            "user_service_replicas": self.replicas,
            "drop_listeners": self.listeners,
            "requests": per,
            "requests_per_s": round(per / self.seconds),
            "replies_per_request": round((publishes - per) / per, 2),
            "redis_commands_per_request": {
                k: round(v / per, 2) for k, v in sorted(self.commands.items()) if v
            },
            "user_service_cpu_us_per_request": round(self.user_service_cpu / per * 1e6, 1),
            "per_replica_cpu_us_per_request": round(
                self.user_service_cpu / per / self.replicas * 1e6, 1
            ),
            "listener_cpu_us_per_request_each": (
                round(self.listener_cpu / per / self.listeners * 1e6, 1) if self.listeners else None
            ),
            "redis_cpu_us_per_request": round(self.redis_cpu / per * 1e6, 1),
            "asker_cpu_us_per_request": round(self.asker_cpu / per * 1e6, 1),
        }


async def register_users(url: str, count: int) -> list[uuid.UUID]:
    ids = []
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        for _ in range(count):
            email = f"fanout-{uuid.uuid4().hex[:12]}@example.com"
            answer = await http.post(
                "/users", json={"email": email, "password": PASSWORD, "full_name": "Fan Out"}
            )
            answer.raise_for_status()
            ids.append(uuid.UUID(answer.json()["id"]))
    return ids


@contextlib.asynccontextmanager
async def asker(stack: DistributedStack) -> AsyncIterator[CachedBusUserVerifier]:
    """The Order Service's verifier, with a cache that never holds anything: every request
    goes out on ``verify_user``."""
    redis = create_redis(
        "127.0.0.1", stack.redis.port, name="bench-fanout", connect_timeout=1.0, timeout=1.0
    )
    bus = RedisBus(redis)
    verifier = CachedBusUserVerifier(InMemoryCache(), bus, timeout=1.0, fallback=None)
    await bus.start()
    try:
        yield verifier
    finally:
        await bus.close()
        await redis.aclose()


async def load(
    verifier: CachedBusUserVerifier, users: list[uuid.UUID], requests: int, concurrency: int
) -> None:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            check = await verifier.verify(random.choice(users))
            if check.source != "bus" or not check.exists:
                raise RuntimeError(f"unexpected answer {check}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(
    stack: DistributedStack,
    verifier: CachedBusUserVerifier,
    users: list[uuid.UUID],
    *,
    requests: int,
    concurrency: int,
    listeners: list[subprocess.Popen[bytes]],
) -> Sample:
    # Warm every replica's memory of these users and every connection first.
    await load(verifier, users, max(len(users) * 3, 200), concurrency)
    pids = [s.pid for s in stack.user_services]
    redis_pid = stack.redis.pid
    before_cpu = [cpu_seconds(p) for p in pids]
    before_listeners = [cpu_seconds(p.pid) for p in listeners]
    before_redis = cpu_seconds(redis_pid)
    before_commands = await command_counts(stack)
    started, started_cpu = time.perf_counter(), time.process_time()
    await load(verifier, users, requests, concurrency)
    seconds, asker_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    after_commands = await command_counts(stack)
    commands = {
        name: calls - before_commands.get(name, 0)
        for name, calls in after_commands.items()
        if name != "info"
    }
    return Sample(
        replicas=len(pids),
        listeners=len(listeners),
        requests=requests,
        seconds=seconds,
        user_service_cpu=sum(cpu_seconds(p) for p in pids) - sum(before_cpu),
        listener_cpu=sum(cpu_seconds(p.pid) for p in listeners) - sum(before_listeners),
        redis_cpu=cpu_seconds(redis_pid) - before_redis,
        asker_cpu=asker_cpu,
        commands=commands,
    )


def start_listeners(count: int, redis_port: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bench.fanout", "--listen", str(redis_port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


async def wait_for_listeners(stack: DistributedStack, wanted: int) -> None:
    async with stack.redis.client() as client:
        for _ in range(200):
            [(_, subscribers)] = await client.pubsub_numsub(VERIFY_USER_CHANNEL)
            if int(subscribers) >= wanted:
                return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"fewer than {wanted} subscribers on {VERIFY_USER_CHANNEL}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        async with distributed_stack(
            Path(folder), internal_token=TOKEN, user_services=1, order_services=0
        ) as stack:
            users = await register_users(stack.user_service.url, args.users)
            async with asker(stack) as verifier:
                # The proposal's non-answering replicas: one answering replica, listeners
                # that only look at the user id and drop the message.
                listeners = start_listeners(args.listeners, stack.redis.port)
                try:
                    await wait_for_listeners(stack, 1 + args.listeners)
                    sample = await measure(
                        stack,
                        verifier,
                        users,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        listeners=listeners,
                    )
                    rows.append(sample.row())
                finally:
                    stop(listeners)
                await wait_for_listeners(stack, 1)
                # Today's design: every replica answers every request.
                for replicas in args.replicas:
                    while len(stack.user_services) < replicas:
                        await stack.add_user_service()
                    await stack.wait_for_subscribers()
                    sample = await measure(
                        stack,
                        verifier,
                        users,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        listeners=[],
                    )
                    rows.append(sample.row())
    return rows


def listen(redis_port: int) -> None:
    """A subscriber of ``verify_user`` that does what a non-answering replica would: find the
    user id in the message and drop it (its hash says another replica answers)."""

    async def main() -> None:
        redis = create_redis(
            "127.0.0.1", redis_port, name="bench-fanout-listener", connect_timeout=1.0, timeout=1.0
        )
        bus = RedisBus(redis)
        seen = 0

        async def drop(raw: bytes) -> None:
            nonlocal seen
            at = raw.find(USER_ID_FIELD) + len(USER_ID_FIELD)
            if zlib.crc32(raw[at : at + 36]) % 1_000_003 == -1:  # never: not this replica's
                raise AssertionError
            seen += 1

        bus.subscribe(VERIFY_USER_CHANNEL, drop)
        await bus.start()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        await bus.close()
        await redis.aclose()

    uvloop.run(main())


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "| user-service replicas | drop-only listeners | requests/s | replies per request "
        "| user-service CPU us/request (all replicas) | per replica | per listener "
        "| Redis CPU us/request | asker CPU us/request | Redis commands per request |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        commands = ", ".join(f"{k} {v}" for k, v in r["redis_commands_per_request"].items())
        listener = r["listener_cpu_us_per_request_each"]
        print(
            f"| {r['user_service_replicas']} | {r['drop_listeners']} | {r['requests_per_s']} "
            f"| {r['replies_per_request']} | {r['user_service_cpu_us_per_request']} "
            f"| {r['per_replica_cpu_us_per_request']} | {listener if listener else '-'} "
            f"| {r['redis_cpu_us_per_request']} | {r['asker_cpu_us_per_request']} "
            f"| {commands} |"
        )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--listeners", type=int, default=3, help="drop-only subscribers")
    parser.add_argument("--requests", type=int, default=5000, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--listen", type=int, metavar="REDIS_PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.listen is not None:
        listen(args.listen)
        return 0
    started = time.perf_counter()
    rows = uvloop.run(run(args))
    print_table(rows)
    took = time.perf_counter() - started
    print(f"\n(python -m bench.fanout {' '.join(sys.argv[1:])}: {took:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
