"""deploy/kubernetes as a cluster would receive it: rendered by ``kubectl kustomize`` (no
cluster is asked), and the tools that check it. A missing tool skips with one line on a
developer's machine and fails under ``CI=true``."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
# What `kubectl apply -k` is given: the base (production) and the development overlay.
TARGETS = {
    "base": KUBERNETES,
    "development": KUBERNETES / "overlays" / "development",
}
TOOLS_BIN = ROOT / ".venv-tools" / "bin"
CHECKOV_CONFIG = ROOT / "deploy" / "checkov.yaml"
# The Kubernetes releases the manifests are written for (README, "Kubernetes").
KUBERNETES_VERSIONS = ("1.32.0", "1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0")

Manifest = dict[str, Any]


def unavailable(reason: str) -> None:
    """One clear line: a skip on a developer's machine, a failure in CI."""
    message = f"deployment checks unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def tool(name: str) -> Path:
    """A tool of .venv-tools (``make .venv-tools/.installed``)."""
    path = TOOLS_BIN / name
    if not os.access(path, os.X_OK):
        unavailable(f"{path} missing (make .venv-tools/.installed)")
    return path


@functools.cache
def _rendered_text(target: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("no kubectl on PATH for `kubectl kustomize` (apt-get install kubectl)")
        raise AssertionError  # unreachable: unavailable() skips or fails
    result = subprocess.run(
        [kubectl, "kustomize", str(TARGETS[target])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {target}:\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Rendering:
    """One kustomize target's output: its text and its objects."""

    target: str
    text: str
    objects: tuple[Manifest, ...]

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.target}.yaml"
        path.write_text(self.text)
        return path

    def of_kind(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> Manifest:
        [found] = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return found

    def config_map(self, name: str) -> Manifest:
        """A ConfigMap by the name the manifests use (a generator adds a hash suffix)."""
        found = [
            o
            for o in self.of_kind("ConfigMap")
            if o["metadata"]["name"] == name or o["metadata"]["name"].startswith(f"{name}-")
        ]
        assert len(found) == 1, (name, [o["metadata"]["name"] for o in found])
        return found[0]

    def workloads(self) -> Iterator[Manifest]:
        """Everything that runs pods: Deployments, StatefulSets, Jobs."""
        for o in self.objects:
            if o["kind"] in {"Deployment", "StatefulSet", "Job"}:
                yield o


def render(target: str) -> Rendering:
    text = _rendered_text(target)
    objects = tuple(o for o in yaml.safe_load_all(text) if o)
    return Rendering(target, text, objects)


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    """Init containers and containers alike."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]
