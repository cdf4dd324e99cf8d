"""wrk, the load generator: installed from Debian when missing, run, its report parsed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"
MARKER = "BENCH_JSON "
ONCE_DONE = "BENCH_ONCE_DONE"


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first if it is missing."""
    return ensure_command("wrk", "wrk")


def ensure_command(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first if it is missing."""
    found = shutil.which(command)
    if found:
        return found
    print(f"{command} is missing: installing Debian's {package} (apt-get install -y)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = [*prefix, "apt-get", "install", "-y", "-qq", package]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which(command)
    if not found:
        raise RuntimeError(f"{command} could not be installed (Debian's {package})")
    return found


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""

    def line(self) -> str:
        headers = "|".join(f"{name}: {value}" for name, value in self.headers.items())
        for part in (self.path, headers, self.body):
            if "\t" in part or "\n" in part:
                raise ValueError("requests must not contain tabs or newlines")
        return f"{self.method}\t{self.path}\t{headers}\t{self.body}"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    non2xx_by_status: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_requests(path: Path, requests: list[Request]) -> Path:
    path.write_text("".join(request.line() + "\n" for request in requests))
    return path


def wrk_command(
    wrk: str,
    url: str,
    requests_file: Path,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    timeout_s: float = 10.0,
    once: bool = False,
) -> list[str]:
    """``once``: each request of the file once (one thread), ``duration_s`` only a limit."""
    return [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        f"--script={SCRIPT}",
        url,
        "--",
        str(requests_file),
        *(["once"] if once else []),
    ]


def parse_output(stdout: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            raw = json.loads(line[len(MARKER) :])
            break
    else:
        raise RuntimeError(f"wrk printed no report:\n{stdout}")
    errors = {key: int(value) for key, value in raw["errors"].items()}
    # wrk counts >= 400 as "status" errors; our script counts every non-2xx, which includes them.
    total = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    total += max(errors["status"], errors["non2xx"])
    duration_s = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=round(duration_s, 3),
        rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=total,
        error_detail=errors,
        non2xx_by_status={str(k): int(v) for k, v in raw["non2xx_by_status"].items()},
    )


def start_wrk(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(process: subprocess.Popen[str]) -> WrkResult:
    stdout, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{stdout}")
    return parse_output(stdout)


def finish_wrk_once(process: subprocess.Popen[str]) -> WrkResult:
    """The report of a wrk started with ``once``: interrupted as soon as it has sent every
    request, rather than when its duration is over."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(ONCE_DONE):
            process.send_signal(signal.SIGINT)
            break
    return finish_wrk(process)


def run_wrk(command: list[str]) -> WrkResult:
    return finish_wrk(start_wrk(command))
