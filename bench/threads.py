"""Where a server's CPU goes by thread, and how its orders are batched, under one workload.

``python -m bench.threads WORKLOAD [--deployment single|distributed] [--duration S]``: one
deployment of this checkout, loaded with wrk at 32 connections; for the server that answers
the workload, the CPU time of each of its threads over the run (from ``/proc``) per request,
and the group commit's batch sizes over the run (from its ``/metrics``). A thread near a whole
core is the bottleneck; a main thread well under one, with the load still queued, is waiting.
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from pathlib import Path

import httpx

from bench import report
from bench.observability import TICKS_PER_S
from bench.run import (
    RESULTS,
    Run,
    create_accounts,
    distributed,
    parse_options,
    single_process,
    workload_requests,
)
from bench.wrk import ensure_wrk, run_wrk, write_requests, wrk_command

_BUCKET = re.compile(r'^order_commit_batch_size_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.M)


def thread_ticks(pid: int) -> Counter[str]:
    """CPU clock ticks (user and system) of each thread of ``pid`` so far."""
    ticks: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            raw = stat.read()
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        label = "main thread" if int(tid) == pid else f"thread {tid} ({name})"
        ticks[label] = int(fields[11]) + int(fields[12])
    return ticks


def batch_buckets(orders_url: str) -> dict[str, float]:
    """The cumulative buckets of the group commit's batch sizes (``le`` to count)."""
    text = httpx.get(f"{orders_url}/metrics", timeout=10).text
    return {le: float(count) for le, count in _BUCKET.findall(text)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__)
    parser.add_argument("workload")
    parser.add_argument("--deployment", choices=["single", "distributed"], default="single")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    folder = RESULTS / "threads"
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(parse_options(["--quick"]), ensure_wrk(), folder)
    factory = single_process if args.deployment == "single" else distributed
    on_users = args.workload in ("read_me", "log_in")
    with factory(run, Path(__file__).resolve().parent.parent, args.deployment) as deployment:
        accounts = create_accounts(deployment.users_url, deployment.orders_url, 8, 21)
        url = deployment.users_url if on_users else deployment.orders_url
        pid = deployment.user_pid if on_users else deployment.order_pid
        file = write_requests(
            folder / f"{args.workload}.requests", workload_requests(args.workload, accounts)
        )
        run_wrk(wrk_command(run.wrk, url, file, connections=32, duration_s=3))  # warm up
        batches_before = batch_buckets(deployment.orders_url)
        before = thread_ticks(pid)
        result = run_wrk(wrk_command(run.wrk, url, file, connections=32, duration_s=args.duration))
        used = thread_ticks(pid) - before
        batches_after = batch_buckets(deployment.orders_url)
    print(f"{args.deployment}.{args.workload}: {report.format_result(result)}")
    for thread, ticks in used.most_common():
        seconds = ticks / TICKS_PER_S
        per_request = seconds * 1e6 / max(result.requests, 1)
        print(f"  {thread:<32} {seconds:6.2f} s CPU  {per_request:7.1f} us per request")
    counts = {le: batches_after[le] - batches_before.get(le, 0.0) for le in batches_after}
    if counts.get("+Inf"):
        sizes = ", ".join(f"<= {le}: {count:.0f}" for le, count in counts.items())
        print(f"  group commit batches, cumulative by size: {sizes}")


if __name__ == "__main__":
    main()
