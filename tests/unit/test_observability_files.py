"""The compose observability profile: Prometheus scrapes both services, Grafana's dashboard
asks only for metrics the services export, Jaeger takes their OTLP."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.deployments import single
from tests.support.distributed import ROOT

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "services.json"
PROFILE = "observability"
# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "by", "rate", "histogram_quantile", "le", "without", "avg", "max", "min", "on",
    "increase", "irate", "count", "ignoring", "group_left", "group_right",
}  # fmt: skip


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_the_profile_adds_prometheus_grafana_and_jaeger_only_when_asked() -> None:
    services = compose()["services"]
    observing = {name for name, s in services.items() if PROFILE in s.get("profiles", [])}
    assert observing == {"prometheus", "grafana", "jaeger"}
    for name in services.keys() - observing:
        assert "profiles" not in services[name], name


def test_prometheus_scrapes_both_services_on_their_ports() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        target: job.get("metrics_path", "/metrics")
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {"user-service:8001": "/metrics", "order-service:8002": "/metrics"}
    mounted = compose()["services"]["prometheus"]["volumes"]
    assert any(v.startswith("./deploy/prometheus/prometheus.yml:") for v in mounted)


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_folder = mounts["./deploy/grafana/dashboards"]
    provider = yaml.safe_load((provisioning / "dashboards" / "services.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dashboards_folder
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    urls = {s["type"]: s["url"] for s in sources["datasources"]}
    assert urls["prometheus"] == "http://prometheus:9090"


def test_the_services_send_otlp_over_http_to_jaeger_when_tracing_is_asked_for() -> None:
    services = compose()["services"]
    assert "4318:4318" in services["jaeger"]["ports"]
    for name in ("user-service", "order-service"):
        env = services[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":-http://jaeger:4318}")
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        # Off unless the one who starts compose turns it on.
        assert env["OTEL_TRACES_EXPORTER"] == "${OTEL_TRACES_EXPORTER:-none}"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose binary")
@pytest.mark.parametrize("profile", [[], ["--profile", PROFILE]], ids=["plain", PROFILE])
def test_docker_compose_accepts_the_file(profile: list[str]) -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), *profile, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects: identifiers not inside ``{...}`` label
    matchers, ``[...]`` ranges, ``by (...)`` groupings or strings, and not PromQL words."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without)\s*\([^)]*\)", "", stripped)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return {w for w in words if w not in PROMQL_WORDS}


def test_metric_names_are_read_from_queries() -> None:
    assert metric_names(
        'sum by (job, le) (rate(a_bucket{x="y"}[$__rate_interval])) / sum(rate(b_total[1m]))'
    ) == {"a_bucket", "b_total"}


async def exported_names(tmp_path: Path) -> set[str]:
    """Every series name the app's /metrics offers (a histogram's _bucket, _sum, _count)."""
    async with single(tmp_path) as deployment:
        text = (await deployment.orders.get("/metrics")).text
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            name = name.removesuffix("_total")
            suffixes = {
                "counter": ["_total"],
                "histogram": ["_bucket", "_sum", "_count"],
                "gauge": [""],
            }[kind]
            names.update(name + suffix for suffix in suffixes)
    return names


async def test_every_metric_the_dashboard_queries_is_exported(tmp_path: Path) -> None:
    # The single process builds both services' metrics, as each service does on its own.
    exported = await exported_names(tmp_path)
    queried = set().union(*(metric_names(expr) for expr in dashboard_queries()))
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, sorted(queried - exported)
