"""docker-compose.yml and the Dockerfiles keep the original design's names: services, ports,
environment variables, health checks, start order. (Docker cannot run here; the images'
commands themselves run in the integration tests.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.distributed import ORDER_DOCKERFILE, ROOT, USER_DOCKERFILE
from user_service.core.config import UserSettings

COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_compose_runs_the_four_services_of_the_design() -> None:
    # Outside a profile (the observability profile adds its own: test_observability_files).
    services = {n: s for n, s in compose()["services"].items() if not s.get("profiles")}
    assert set(services) == {"redis", "postgres", "user-service", "order-service"}
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["ports"] == ["6379:6379"]
    assert services["user-service"]["ports"] == ["8001:8001"]
    assert services["order-service"]["ports"] == ["8002:8002"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name


def test_each_service_is_built_from_its_own_dockerfile_at_the_repository_root() -> None:
    services = compose()["services"]
    for name, dockerfile in (
        ("user-service", USER_DOCKERFILE),
        ("order-service", ORDER_DOCKERFILE),
    ):
        build = services[name]["build"]
        assert build["context"] == "."
        assert (ROOT / build["dockerfile"]).resolve() == dockerfile


def test_services_start_after_what_they_need_is_healthy() -> None:
    services = compose()["services"]
    healthy = {"condition": "service_healthy"}
    assert services["user-service"]["depends_on"] == {"postgres": healthy, "redis": healthy}
    assert services["order-service"]["depends_on"] == {
        "postgres": healthy,
        "redis": healthy,
        "user-service": healthy,
    }


def test_services_get_the_designs_environment() -> None:
    services = compose()["services"]
    users, orders = (
        services["user-service"]["environment"],
        services["order-service"]["environment"],
    )
    for env in (users, orders):
        assert env["REDIS_HOST"] == "redis"
        assert str(env["REDIS_PORT"]) == "6379"
        assert env["INTERNAL_API_TOKEN"]
    assert users["INTERNAL_API_TOKEN"] == orders["INTERNAL_API_TOKEN"]
    assert users["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert users["DATABASE_URL"].endswith("@postgres:5432/user_service")
    assert orders["DATABASE_URL"].endswith("@postgres:5432/order_service")
    assert orders["USER_SERVICE_URL"] == "http://user-service:8001"


def test_the_databases_the_services_use_are_created_by_the_init_script() -> None:
    postgres = compose()["services"]["postgres"]
    [init] = [v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v]
    script = (ROOT / init.split(":")[0]).read_text()
    assert "CREATE DATABASE user_service;" in script
    assert "CREATE DATABASE order_service;" in script


def test_the_user_services_data_folder_is_a_named_volume() -> None:
    document = compose()
    user = document["services"]["user-service"]
    data_dir = user["environment"]["DATA_DIR"]
    assert f"user-service-data:{data_dir}" in user["volumes"]
    assert "user-service-data" in document["volumes"]


@pytest.mark.parametrize(
    ("dockerfile", "port"), [(USER_DOCKERFILE, 8001), (ORDER_DOCKERFILE, 8002)]
)
def test_images_run_unprivileged_and_migrate_before_serving(dockerfile: Path, port: int) -> None:
    text = dockerfile.read_text()
    package = dockerfile.parent.name
    assert "FROM python:3.11-slim" in text
    assert "\nUSER 10001:10001\n" in text
    assert f"EXPOSE {port}\n" in text
    assert f"PORT={port}" in text
    assert f"COPY {package}/requirements.txt" in text
    copied = {line.split()[1] for line in text.splitlines() if line.startswith("COPY ")}
    assert copied == {f"{package}/requirements.txt", "servicekit/", "contracts/", f"{package}/"}
    assert f"python -m {package}.migrate && exec uvicorn {package}.main:app" in text


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose binary")
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def compose_default(value: str) -> str:
    """The value of ``${NAME:-default}`` when NAME is not set."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def test_the_order_services_docs_log_in_at_the_user_service_from_a_browser() -> None:
    """``Authorize`` on http://localhost:8002/docs posts to the user service as the host's
    browser reaches it, and the user service lets pages of the order service's origin read
    the answer (CORS)."""
    services = compose()["services"]
    users, orders = services["user-service"], services["order-service"]
    user_port = int(users["ports"][0].split(":")[0])
    order_port = int(orders["ports"][0].split(":")[0])
    token_url = urlsplit(compose_default(orders["environment"]["PUBLIC_TOKEN_URL"]))
    assert (token_url.hostname, token_url.port, token_url.path) == (
        "localhost",
        user_port,
        "/auth/token",
    )
    origins = UserSettings(
        database_url="sqlite+aiosqlite:///x.db",
        internal_api_token="t" * 24,
        cors_allow_origins=compose_default(users["environment"]["CORS_ALLOW_ORIGINS"]),
    ).cors_allow_origins
    assert f"http://localhost:{order_port}" in origins
    assert f"http://127.0.0.1:{order_port}" in origins
    assert "CORS_ALLOW_CREDENTIALS" not in users["environment"]


def test_compose_redis_asks_for_the_password_both_services_use() -> None:
    services = compose()["services"]
    redis = services["redis"]
    password = compose_default(redis["environment"]["REDIS_PASSWORD"])
    assert password
    assert "--requirepass" in " ".join(redis["command"])
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    for name in ("user-service", "order-service"):
        env = services[name]["environment"]
        assert compose_default(env["REDIS_PASSWORD"]) == password, name
    users, orders = (services[n]["environment"] for n in ("user-service", "order-service"))
    assert users["REDIS_SIGNING_KEY"] == orders["REDIS_SIGNING_KEY"]
    settings = UserSettings(
        database_url="sqlite+aiosqlite:///x.db",
        internal_api_token="t" * 24,
        redis_password=compose_default(users["REDIS_PASSWORD"]),
        redis_signing_key=compose_default(users["REDIS_SIGNING_KEY"]),
    )
    assert len(settings.redis_signing_keys()) == 1
