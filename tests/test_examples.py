"""Every manifest in examples/ is applied and must settle Ready: the examples cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from devops_operator.api import ALL_KINDS
from devops_operator.kube import apply as kube_apply
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.sandbox.runner import waits_for_approval

from support import get_custom, wait_for_condition, wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PLURALS = {kind.kind: kind.plural for kind in ALL_KINDS}
# The examples refer to the shop project of devopsproject.yaml, as they do in the sandbox.
PROJECT = ROOT / "examples" / "devopsproject.yaml"


PROJECT = ROOT / "examples" / "devopsproject.yaml"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_applies_and_becomes_ready(
    path: Path, operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    """Each example settles: Ready, or (production deployments) waiting for a person's approval by design."""
    ours = []
    needs_project = path != PROJECT and "projectRef" in path.read_text()
    for manifest in kube_apply.load_manifests([PROJECT] if needs_project else []):
        kube_apply.apply(kube_api, manifest, namespace=namespace)
    for manifest in kube_apply.load_manifests([path]):
        kube_apply.apply(kube_api, manifest, namespace=namespace)
        if manifest["kind"] in PLURALS:
            ours.append((PLURALS[manifest["kind"]], manifest["metadata"]["name"]))
    assert ours, f"{path.name} holds none of our kinds"
    for plural, name in ours:
        if plural == "infradeployments" and "prod" in name:
            wait_until(lambda name=name: waits_for_approval(get_custom(kube_api, "infradeployments", namespace, name)),
                       timeout=60, what=f"{name} waiting for approval")
            continue
        wait_for_condition(kube_api, plural, namespace, name, "Ready", timeout=120)


@pytest.mark.timeout(400)
def test_sandbox_once_runs_the_examples_and_exits_zero(tmp_path: Path) -> None:
    """`make demo ARGS=--once`: the real CLI in a subprocess, as a user runs it."""
    devopsctl = Path(sys.executable).parent / "devopsctl"
    # A relative state directory, as `make demo` uses (.sandbox): the runner Jobs run elsewhere.
    result = subprocess.run(
        [str(devopsctl), "sandbox", "--once", "--timeout", "150", "--state-dir", "state",
         "--examples", str(ROOT / "examples")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DevOpsProject/shop" in result.stdout
    assert "all examples settled" in result.stdout and "FAILED" not in result.stdout
    assert "waiting for a person's approval by design: InfraDeployment/shop-queue-prod" in result.stdout
    assert "kubectl -n default patch infradeployment shop-queue-prod --type merge" in result.stdout
    assert "engine: stand-in Terraform (a test double)" in result.stdout
    kubeconfig = (tmp_path / "state" / "kubeconfig").read_text()
    assert "server: http://127.0.0.1:" in kubeconfig
