"""Every object kustomize renders, base and development overlay, is valid for each Kubernetes
release we claim, strictly: an unknown field, or a kind with no schema, is an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy.rendering import KUBERNETES_VERSIONS, TARGETS, render, tool


def validate(path: Path, version: str) -> str:
    """kubernetes-validate's complaints (errors and warnings alike); empty when valid."""
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    complaints = (result.stdout + result.stderr).strip()
    if result.returncode != 0 and not complaints:
        complaints = f"exit code {result.returncode}"
    return complaints


@pytest.mark.parametrize("target", TARGETS)
def test_the_rendered_objects_validate_for_every_claimed_version(
    target: str, tmp_path: Path
) -> None:
    path = render(target).write(tmp_path)
    problems = {version: validate(path, version) for version in KUBERNETES_VERSIONS}
    assert not {v: p for v, p in problems.items() if p}, problems


def test_the_validation_refuses_an_unknown_field_and_an_unknown_kind(tmp_path: Path) -> None:
    [deployment, *_] = render("base").of_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert "readOnlyRootFileSystem" in validate(path, KUBERNETES_VERSIONS[0])

    path.write_text(yaml.safe_dump({"apiVersion": "v9", "kind": "Nothing", "metadata": {}}))
    assert validate(path, KUBERNETES_VERSIONS[0])


def test_the_base_holds_what_the_services_need_and_the_overlay_adds_the_backing_services() -> None:
    base, development = render("base"), render("development")
    kinds = {(o["kind"], o["metadata"]["name"]) for o in base.objects}
    for service in ("user-service", "order-service"):
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert (kind, service) in kinds
        assert ("Job", f"{service}-migrate") in kinds
        assert ("ServiceAccount", service) in kinds
    assert ("Namespace", "user-order") in kinds
    assert ("Ingress", "api") in kinds
    assert ("NetworkPolicy", "default-deny") in kinds
    assert not base.of_kind("Secret"), "the base references Secrets, it never contains one"
    assert not base.of_kind("StatefulSet")
    # One namespace for everything that has one.
    for rendering in (base, development):
        namespaces = {o["metadata"].get("namespace") for o in rendering.objects}
        assert namespaces == {None, "user-order"}, namespaces
        assert [o for o in rendering.objects if "namespace" not in o["metadata"]] == [
            rendering.named("Namespace", "user-order")
        ]
    extra = {(o["kind"], o["metadata"]["name"]) for o in development.objects} - kinds
    assert {("StatefulSet", "redis"), ("StatefulSet", "postgres")} <= extra
    assert {("Service", "redis"), ("Service", "postgres")} <= extra
    for name in ("redis", "postgres"):
        assert development.named("StatefulSet", name)["spec"]["replicas"] == 1
