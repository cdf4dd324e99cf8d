"""The manifests say what the code does: every variable a workload sets is a setting of its
service (read from the settings classes, so a new setting needs no change here), the probes
and ports are the app's, the images are docker-compose.yml's, the commands are the images',
and the pods run as the Dockerfiles' numeric user."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from order_service.core.config import OrderSettings
from order_service.main import create_app as create_order_app
from servicekit.settings import ServiceSettings
from tests.deploy.rendering import (
    ROOT,
    Manifest,
    Rendering,
    containers,
    pod_spec,
    render,
)
from user_service.core.config import UserSettings
from user_service.main import create_app as create_user_app

SETTINGS: dict[str, type[ServiceSettings]] = {
    "user-service": UserSettings,
    "order-service": OrderSettings,
}
PACKAGES = {"user-service": "user_service", "order-service": "order_service"}
# Variables that are not settings, each read by something else in the container:
# OTEL_*: the OpenTelemetry SDK reads its standard variables itself (never the settings);
# FORWARDED_ALLOW_IPS: uvicorn, the proxies whose X-Forwarded-For it believes.
READ_BY_OTHERS_PREFIXES = ("OTEL_",)
READ_BY_OTHERS = {"FORWARDED_ALLOW_IPS"}
# Required in every cluster although the class has a default: without it each replica
# would make its own development signing key.
REQUIRED_IN_KUBERNETES = {"user-service": {"JWT_PRIVATE_KEY"}, "order-service": set()}


def setting_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads: its fields' names (or aliases),
    upper-cased (the classes are case-insensitive)."""
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add((alias if isinstance(alias, str) else name).upper())
    return names


def service_of(workload: Manifest) -> str:
    name: str = workload["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def service_workloads(rendering: Rendering) -> list[Manifest]:
    return [w for w in rendering.workloads() if service_of(w) in SETTINGS]


def environment(rendering: Rendering, container: Manifest) -> dict[str, Manifest | str]:
    """Every variable a container gets: from its ConfigMaps (value) and its env (the entry)."""
    env: dict[str, Manifest | str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"only ConfigMaps in envFrom: {source}"
        config = rendering.config_map(source["configMapRef"]["name"])
        env.update(config["data"])
    for entry in container.get("env", []):
        env[entry["name"]] = entry
    return env


def docker_cmd(service: str) -> str:
    """The shell command of the image's CMD (``sh -c "..."``)."""
    dockerfile = ROOT / PACKAGES[service] / "Dockerfile"
    [line] = [x for x in dockerfile.read_text().splitlines() if x.startswith("CMD ")]
    argv = json.loads(line.removeprefix("CMD "))
    assert argv[:2] == ["sh", "-c"], argv
    command: str = argv[2]
    return command


def dockerfile_user(service: str) -> tuple[int, int]:
    dockerfile = ROOT / PACKAGES[service] / "Dockerfile"
    [user] = [x.split()[1] for x in dockerfile.read_text().splitlines() if x.startswith("USER ")]
    assert re.fullmatch(r"\d+:\d+", user), f"{dockerfile}: USER {user} is not numeric uid:gid"
    uid, gid = user.split(":")
    return int(uid), int(gid)


def app_paths(service: str) -> set[str]:
    """The routes of the service's app (built, not started: nothing connects)."""
    common: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/nothing",
        "internal_api_token": "x" * 32,
    }
    app: FastAPI = (
        create_user_app(UserSettings(**common))
        if service == "user-service"
        else create_order_app(OrderSettings(**common))
    )
    return set(app.openapi()["paths"])


@pytest.fixture(scope="module", params=["base", "development"])
def rendering(request: pytest.FixtureRequest) -> Rendering:
    return render(request.param)


def test_every_variable_a_workload_sets_is_a_setting_of_its_service(rendering: Rendering) -> None:
    workloads = service_workloads(rendering)
    assert {service_of(w) for w in workloads} == set(SETTINGS)
    for workload in workloads:
        service = service_of(workload)
        known = setting_names(SETTINGS[service]) | READ_BY_OTHERS
        for container in containers(workload):
            names = set(environment(rendering, container))
            unknown = {n for n in names - known if not n.startswith(READ_BY_OTHERS_PREFIXES)}
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            assert not unknown, f"{where}: not settings of {SETTINGS[service].__name__}: {unknown}"
            required = {
                name.upper()
                for name, field in SETTINGS[service].model_fields.items()
                if field.is_required()
            }
            assert required <= names, f"{where}: required settings missing: {required - names}"
        if workload["kind"] == "Deployment":
            server = pod_spec(workload)["containers"][0]
            wanted = REQUIRED_IN_KUBERNETES[service]
            assert wanted <= set(environment(rendering, server)), workload["metadata"]["name"]


def test_the_config_maps_values_are_valid_settings(
    rendering: Rendering, monkeypatch: pytest.MonkeyPatch
) -> None:
    for workload in service_workloads(rendering):
        settings = SETTINGS[service_of(workload)]
        server = pod_spec(workload)["containers"][0]
        for name in setting_names(settings):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment(rendering, server).items():
            if isinstance(value, str):
                monkeypatch.setenv(name, value)
        # Secrets are not in the manifests: stand-ins of the right shape.
        monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@postgres:5432/db")
        monkeypatch.setenv("INTERNAL_API_TOKEN", "x" * 32)
        monkeypatch.delenv("JWT_PRIVATE_KEY", raising=False)
        if workload["kind"] == "Deployment":  # the servers; a migration Job needs no Redis
            assert "REDIS_SIGNING_KEY" in environment(rendering, server), "required to serve"
        monkeypatch.setenv("REDIS_SIGNING_KEY", "x" * 32)
        loaded = settings()
        assert loaded.migrate_on_start is False, "the migration Job migrates, not the replicas"


def test_secrets_come_from_secrets_and_the_base_contains_none(rendering: Rendering) -> None:
    secret_like = {
        "DATABASE_URL",
        "INTERNAL_API_TOKEN",
        "JWT_PRIVATE_KEY",
        "REDIS_PASSWORD",
        "REDIS_SIGNING_KEY",
    }
    for workload in service_workloads(rendering):
        for container in containers(workload):
            for name, value in environment(rendering, container).items():
                if name in secret_like:
                    assert isinstance(value, dict), f"{name} is a plain value"
                    assert "secretKeyRef" in value["valueFrom"], name
    placeholders = rendering.of_kind("Secret")
    if rendering.target == "base":
        assert not placeholders
    for secret in placeholders:
        assert secret["metadata"]["annotations"]["user-order/placeholder"] == "development only"
        assert "JWT_PRIVATE_KEY" not in secret.get("stringData", {}), "no key is committed"


def test_probes_ports_and_ingress_routes_are_the_apps(rendering: Rendering) -> None:
    ingress = rendering.named("Ingress", "api")
    routed: dict[str, set[str]] = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            routed.setdefault(backend["name"], set()).add(path["path"])
            assert backend["port"]["name"] == "http"
    assert routed == {
        "user-service": {"/users", "/auth", "/.well-known"},
        "order-service": {"/orders"},
    }
    for service in SETTINGS:
        paths = app_paths(service)
        deployment = rendering.named("Deployment", service)
        [server] = pod_spec(deployment)["containers"]
        [port] = server["ports"]
        assert port["name"] == "http"
        exposed = ROOT / PACKAGES[service] / "Dockerfile"
        assert f"\nEXPOSE {port['containerPort']}\n" in exposed.read_text()
        assert f"--port={port['containerPort']}" in server["command"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = server[probe]["httpGet"]
            assert http["path"] in paths, (service, probe, http["path"])
            assert http["port"] == "http"
        assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert server["livenessProbe"]["httpGet"]["path"] == "/health"
        for prefix in routed[service]:
            assert any(p == prefix or p.startswith(f"{prefix}/") for p in paths), prefix
        svc = rendering.named("Service", service)
        [svc_port] = svc["spec"]["ports"]
        assert svc_port["targetPort"] == "http"
        assert svc_port["port"] == port["containerPort"]
        assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    order_config = rendering.config_map("order-service-config")["data"]
    user_port = rendering.named("Service", "user-service")["spec"]["ports"][0]["port"]
    assert order_config["USER_SERVICE_URL"] == f"http://user-service:{user_port}"


def test_images_are_the_compose_files_and_commands_the_images(rendering: Rendering) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for workload in service_workloads(rendering):
        service = service_of(workload)
        package = PACKAGES[service]
        image_name = compose[service]["image"].split(":", 1)[0]
        assert compose[service]["build"]["dockerfile"] == f"{package}/Dockerfile"
        for container in containers(workload):
            repository, _, tag = container["image"].rpartition(":")
            assert repository == image_name, container["image"]
            assert tag not in {"", "latest"}, container["image"]
        # The image's CMD is "migrate && exec uvicorn ...": the Job runs the first half, the
        # Deployment the second (with the same graceful-shutdown timeout), the init
        # container waits for the first.
        migrate_part, _, server_part = docker_cmd(service).partition(" && exec ")
        migrate_argv = shlex.split(migrate_part)
        server_argv = shlex.split(server_part)
        spec = pod_spec(workload)
        if workload["kind"] == "Job":
            [job] = spec["containers"]
            assert job["command"] == migrate_argv
            continue
        [wait] = spec["initContainers"]
        assert wait["command"][: len(migrate_argv)] == migrate_argv
        assert wait["command"][len(migrate_argv)] == "--wait"
        [server] = spec["containers"]
        assert server["command"][:2] == server_argv[:2] == ["uvicorn", f"{package}.main:app"]
        flags = {a for a in server_argv if a.startswith("--") and a not in {"--host", "--port"}}
        given = {a.split("=", 1)[0] for a in server["command"][2:]}
        assert flags <= given, flags - given
        grace = int(server_argv[server_argv.index("--timeout-graceful-shutdown") + 1])
        assert f"--timeout-graceful-shutdown={grace}" in server["command"]
        # The pod gets its preStop pause, then uvicorn's graceful shutdown, before SIGKILL.
        pause = server["lifecycle"]["preStop"]["exec"]["command"]
        assert pause[0] == "sleep"
        assert spec["terminationGracePeriodSeconds"] > int(pause[1]) + grace


def test_pods_run_as_the_dockerfiles_numeric_user_and_under_the_restricted_profile(
    rendering: Rendering,
) -> None:
    for workload in rendering.workloads():
        spec = pod_spec(workload)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        if service_of(workload) in SETTINGS:
            uid, gid = dockerfile_user(service_of(workload))
            assert (security["runAsUser"], security["runAsGroup"]) == (uid, gid)
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert set(limits) == set(requests) == {"cpu", "memory"}
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            volumes = {v["name"] for v in spec.get("volumes", [])}
            claims = {
                c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])
            }
            assert mounted <= volumes | claims


def test_each_service_scales_spreads_and_survives_disruption(rendering: Rendering) -> None:
    for service in SETTINGS:
        deployment = rendering.named("Deployment", service)
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        spreads = pod_spec(deployment)["topologySpreadConstraints"]
        assert "kubernetes.io/hostname" in {s["topologyKey"] for s in spreads}
        assert all(s["labelSelector"]["matchLabels"] == labels for s in spreads)
        hpa = rendering.named("HorizontalPodAutoscaler", service)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": service,
        }
        assert hpa["spec"]["minReplicas"] >= 2
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        pdb = rendering.named("PodDisruptionBudget", service)
        assert pdb["spec"]["selector"]["matchLabels"] == labels
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_the_development_postgres_makes_the_compose_files_databases() -> None:
    init = render("development").config_map("postgres-init")["data"]["init-databases.sql"]
    assert init == (ROOT / "deploy" / "postgres" / "init-databases.sql").read_text()


def test_the_dockerfiles_user_is_numeric() -> None:
    for service in SETTINGS:
        uid, gid = dockerfile_user(service)
        assert uid >= 10000
        assert gid >= 10000


def policies_for(rendering: Rendering, labels: dict[str, str], direction: str) -> list[Manifest]:
    """The NetworkPolicy rules of one direction that apply to pods with ``labels``."""
    rules = []
    for policy in rendering.of_kind("NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        matches = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
        for expression in selector.get("matchExpressions", []):
            assert expression["operator"] == "In"
            matches = matches and labels.get(expression["key"]) in expression["values"]
        if matches and direction.capitalize() in policy["spec"]["policyTypes"]:
            rules.extend(policy["spec"].get(direction, []))
    return rules


def reachable_ports(rules: list[Manifest], peer: dict[str, str]) -> set[int]:
    """Ports the rules open to/from a peer (``namespace`` or pod labels)."""
    ports: set[int] = set()
    for rule in rules:
        parties: list[Manifest] = rule.get("from") or rule.get("to") or []
        for party in parties:
            names = party.get("namespaceSelector", {}).get("matchLabels", {})
            pods = party.get("podSelector", {}).get("matchLabels", {})
            expressions = party.get("podSelector", {}).get("matchExpressions", [])
            if "namespaceSelector" in party:
                namespace_match = "namespace" in peer and names == {
                    "kubernetes.io/metadata.name": peer["namespace"]
                }
            else:  # the policy's own namespace
                namespace_match = "namespace" not in peer
            pod_match = all(peer.get(k) == v for k, v in pods.items()) and all(
                peer.get(e["key"]) in e["values"] for e in expressions
            )
            if namespace_match and pod_match:
                ports |= {p["port"] for p in rule["ports"]}
    return ports


def test_network_policies_deny_by_default_and_open_only_the_designs_paths(
    rendering: Rendering,
) -> None:
    default = rendering.named("NetworkPolicy", "default-deny")["spec"]
    assert default == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    name = "app.kubernetes.io/name"
    users = rendering.named("Deployment", "user-service")["spec"]["selector"]["matchLabels"]
    orders = rendering.named("Deployment", "order-service")["spec"]["selector"]["matchLabels"]
    user_port = pod_spec(rendering.named("Deployment", "user-service"))["containers"][0]
    order_port = pod_spec(rendering.named("Deployment", "order-service"))["containers"][0]
    user_port, order_port = (
        user_port["ports"][0]["containerPort"],
        order_port["ports"][0]["containerPort"],
    )
    controller, monitoring = {"namespace": "ingress-nginx"}, {"namespace": "monitoring"}
    into_users = policies_for(rendering, users, "ingress")
    into_orders = policies_for(rendering, orders, "ingress")
    assert reachable_ports(into_users, controller) == {user_port}
    assert reachable_ports(into_users, monitoring) == {user_port}
    assert reachable_ports(into_users, orders) == {user_port}
    assert reachable_ports(into_orders, controller) == {order_port}
    assert reachable_ports(into_orders, monitoring) == {order_port}
    assert reachable_ports(into_orders, users) == set()
    assert reachable_ports(into_users, {"namespace": "elsewhere"}) == set()
    dns = {"namespace": "kube-system", "k8s-app": "kube-dns"}
    for labels, service in ((users, "user-service"), (orders, "order-service")):
        out = policies_for(rendering, labels, "egress")
        assert reachable_ports(out, dns) == {53}
        assert reachable_ports(out, {name: "redis"}) == {6379}
        assert reachable_ports(out, {name: "postgres"}) == {5432}
        migration = {name: service, "app.kubernetes.io/component": "migration"}
        assert reachable_ports(policies_for(rendering, migration, "egress"), {name: "postgres"})
    assert reachable_ports(policies_for(rendering, orders, "egress"), users) == {user_port}
    assert reachable_ports(policies_for(rendering, users, "egress"), orders) == set()
