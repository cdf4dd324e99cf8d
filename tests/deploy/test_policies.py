"""checkov's Kubernetes policies over the rendered manifests (base and development overlay)
and its Dockerfile policies over both images pass. deploy/checkov.yaml holds the only skips,
each with its reason in a comment just above it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy.rendering import CHECKOV_CONFIG, ROOT, TARGETS, render, tool

DOCKERFILES = [ROOT / "user_service" / "Dockerfile", ROOT / "order_service" / "Dockerfile"]


def checkov(framework: str, files: list[Path]) -> list[dict[str, Any]]:
    """checkov's reports (one per framework) for ``files``, with our configuration."""
    args = [str(tool("checkov")), "--config-file", str(CHECKOV_CONFIG)]
    args += ["--framework", framework, "--output", "json"]
    for path in files:
        args += ["--file", str(path)]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr}"
    parsed = json.loads(result.stdout)
    reports: list[dict[str, Any]] = parsed if isinstance(parsed, list) else [parsed]
    return reports


def failures(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]


def passed(reports: list[dict[str, Any]]) -> int:
    return sum(report["summary"]["passed"] for report in reports)


@pytest.mark.parametrize("target", TARGETS)
def test_the_kubernetes_policies_pass(target: str, tmp_path: Path) -> None:
    reports = checkov("kubernetes", [render(target).write(tmp_path)])
    assert not failures(reports), "\n".join(failures(reports))
    assert passed(reports) > 100


def test_the_dockerfile_policies_pass() -> None:
    reports = checkov("dockerfile", DOCKERFILES)
    assert not failures(reports), "\n".join(failures(reports))
    assert passed(reports) > 20


def test_the_policies_catch_a_container_that_may_escalate(tmp_path: Path) -> None:
    deployment = render("base").named("Deployment", "order-service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    path = tmp_path / "escalating.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert any(f.startswith("CKV_K8S_20 ") for f in failures(checkov("kubernetes", [path])))


def test_every_skip_is_justified_beside_it() -> None:
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    lines = CHECKOV_CONFIG.read_text().splitlines()
    assert config["skip-download"] is True, "the checks run offline"
    for check in config.get("skip-check", []):
        [at] = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        comment = lines[at - 1].strip()
        assert comment.startswith("#"), f"{check}: no comment above it"
        # The comment block above the skip names the check it justifies.
        block = []
        for line in reversed(lines[:at]):
            if not line.strip().startswith("#"):
                break
            block.append(line)
        assert any(check in line for line in block), f"{check}: its comment does not name it"
