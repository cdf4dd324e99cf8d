"""The services as processes, started the way their images start them: a missing or wrong
setting stops the start with one clear line; the image's HEALTHCHECK command works."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devstack import dockerfile_instruction, free_port, venv_path
from tests.support.distributed import ORDER_DOCKERFILE, ROOT, USER_DOCKERFILE, DistributedStack

VALID = {
    "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/never_used",
    "INTERNAL_API_TOKEN": "a-service-credential-of-some-length",
    "REDIS_SIGNING_KEY": "a-signing-key-of-at-least-32-characters",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
}


async def run_image_command(dockerfile: Path, env: dict[str, str]) -> tuple[int, str]:
    """The image's CMD with ``env`` only; returns the exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        *dockerfile_instruction(dockerfile, "CMD"),
        cwd=ROOT,
        env={
            "PATH": venv_path(),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            **env,
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def env_with(change: dict[str, str | None]) -> dict[str, str]:
    env = {**VALID, **{k: v for k, v in change.items() if v is not None}}
    return {k: v for k, v in env.items() if change.get(k, v) is not None}


# (image, change of the valid environment (None: unset), the variable the line must name)
BAD_SETTINGS: list[tuple[Path, dict[str, str | None], str]] = [
    (USER_DOCKERFILE, {"DATABASE_URL": None}, "DATABASE_URL"),
    (USER_DOCKERFILE, {"DATABASE_URL": "postgres://x@y/z"}, "DATABASE_URL"),
    (USER_DOCKERFILE, {"INTERNAL_API_TOKEN": "short"}, "INTERNAL_API_TOKEN"),
    (ORDER_DOCKERFILE, {"REDIS_PORT": "sixty"}, "REDIS_PORT"),
    (ORDER_DOCKERFILE, {"REDIS_SIGNING_KEY": "too-short"}, "REDIS_SIGNING_KEY"),
    (ORDER_DOCKERFILE, {"USER_SERVICE_URL": "user-service:8001"}, "USER_SERVICE_URL"),
]


async def test_a_bad_setting_stops_the_start_with_one_line() -> None:
    # Side by side: each case is a Python start, and they do not depend on each other.
    results = await asyncio.gather(
        *(run_image_command(dockerfile, env_with(change)) for dockerfile, change, _ in BAD_SETTINGS)
    )
    for (dockerfile, change, named), (code, stderr) in zip(BAD_SETTINGS, results, strict=True):
        case = f"{dockerfile.parent.name} {change}"
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2, (case, stderr)
        assert len(lines) == 1, (case, stderr)
        assert lines[0].startswith("configuration error"), case
        assert named in lines[0], case


async def test_an_unreachable_database_stops_the_start_with_one_line() -> None:
    env = {**VALID, "DATABASE_URL": f"postgresql+asyncpg://u:hunter2@127.0.0.1:{free_port()}/db"}
    code, stderr = await run_image_command(USER_DOCKERFILE, env)
    assert code == 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("user_service: migrations failed on postgresql+asyncpg://u:***@")
    assert "hunter2" not in stderr


async def test_the_image_healthcheck_passes_on_a_running_service(stack: DistributedStack) -> None:
    for dockerfile, service in (
        (USER_DOCKERFILE, stack.user_service),
        (ORDER_DOCKERFILE, stack.order_service),
    ):
        check = dockerfile_instruction(dockerfile, "HEALTHCHECK")
        env = {"PATH": service.env["PATH"], "PORT": str(service.port)}
        assert await exit_code(check, env) == 0
        assert await exit_code(check, {**env, "PORT": str(free_port())}) != 0


async def exit_code(argv: list[str], env: dict[str, str]) -> int:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    async with asyncio.timeout(30):
        return await process.wait()
