"""The instructions a server runs per request, counted by valgrind's callgrind.

``python -m bench.instructions WORKLOAD... [--deployment single|distributed] [--compare DIR]
[--requests N]``: the deployment of this checkout (and of ``DIR``, with ``--compare``) runs
under callgrind (Debian's valgrind, installed if missing) with its counting off. One user with
a page of orders is made; then for each workload, ``N`` requests are sent one at a time after
a warm-up, with counting on only in the server that answers them. It reports instructions per
request, and after/before with ``--compare``.

A count of instructions is not a time: it leaves out waits, cache misses and the other core.
But it repeats to a fraction of a percent whatever else the machine runs, where throughput on
a shared machine moves by a tenth from one run to the next: it shows what a change to the
code's own work buys when a throughput ratio cannot (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import uuid
from pathlib import Path

import httpx

from bench.run import RESULTS, Run, create_accounts, distributed, parse_options, single_process
from bench.run import workload_requests as requests_of
from bench.wrk import Request, ensure_command

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("create_order", "create_order_keyed", "list_orders", "read_order", "read_me")
WARM_UP = 50
_THREAD_COUNT = re.compile(r"^\s*Th\s+\d+\s+([\d,]+)\s*$", re.M)


def callgrind(pid: int, *action: str) -> str:
    """``callgrind_control ACTION pid``'s output; an error naming the pid if it fails."""
    done = subprocess.run(
        ["callgrind_control", *action, str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(action)} {pid}: {done.stderr.strip()}")
    return done.stdout


def send(client: httpx.Client, base_url: str, request: Request) -> None:
    headers = {
        name: uuid.uuid4().hex if value == "{fresh}" else value
        for name, value in request.headers.items()
    }
    response = client.request(
        request.method, base_url + request.path, headers=headers, content=request.body
    )
    response.raise_for_status()


def count(client: httpx.Client, base_url: str, pid: int, request: Request, times: int) -> float:
    """Instructions per request over ``times`` requests, counted in ``pid`` alone."""
    for _ in range(WARM_UP):
        send(client, base_url, request)
    callgrind(pid, "--zero")
    callgrind(pid, "--instr=on")
    try:
        for _ in range(times):
            send(client, base_url, request)
        counted = callgrind(pid, "-e", "Ir")
    finally:
        callgrind(pid, "--instr=off")
    per_thread = _THREAD_COUNT.findall(counted)
    if not per_thread:
        raise RuntimeError(f"callgrind_control gave no count for {pid}: {counted!r}")
    return sum(int(value.replace(",", "")) for value in per_thread) / times


def measure(
    run: Run, code_dir: Path, label: str, deployment: str, workloads: list[str], times: int
) -> dict[str, float]:
    """Instructions per request of each workload, on ``deployment`` of ``code_dir``."""
    valgrind = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--callgrind-out-file=/dev/null",
    ]
    factory = single_process if deployment == "single" else distributed
    counts = {}
    with factory(run, code_dir, label, wrapper=valgrind) as served:
        account = create_accounts(served.users_url, served.orders_url, 1, 21)
        with httpx.Client(timeout=60) as client:
            for workload in workloads:
                on_users = workload == "read_me"
                base_url = served.users_url if on_users else served.orders_url
                pid = served.user_pid if on_users else served.order_pid
                [request] = requests_of(workload, account)
                counts[workload] = count(client, base_url, pid, request, times)
                print(
                    f"  {label}.{workload:<24} {counts[workload]:>14,.0f} instructions per request"
                )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("workloads", nargs="+", choices=WORKLOADS)
    parser.add_argument("--deployment", choices=["single", "distributed"], default="single")
    parser.add_argument("--compare", type=Path, help="a checkout to count too, as before")
    parser.add_argument("--requests", type=int, default=200, help="counted per workload (200)")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    ensure_command("callgrind_control", "valgrind")
    folder = RESULTS / "instructions"
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(parse_options([]), wrk="", folder=folder)  # servers only: no wrk
    after = measure(run, ROOT, "after", args.deployment, args.workloads, args.requests)
    if args.compare is None:
        return
    before = measure(
        run, args.compare.resolve(), "before", args.deployment, args.workloads, args.requests
    )
    print(f"after / before, instructions per request ({args.deployment}):")
    for workload, value in after.items():
        print(f"  {workload:<24} x{value / before[workload]:.3f}")


if __name__ == "__main__":
    main()
