"""Every manifest in examples/ is applied and must settle Ready (or wait for a human approval, where that is
what it shows): the examples cannot rot. They run against the sandbox's demo estate in moto, with its
simulated traffic, and the kubelet double runs the runner Jobs, as in `make demo`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from devops_operator.api import ALL_KINDS
from devops_operator.kube import apply as kube_apply
from devops_operator.sandbox.aws import SimulatedTraffic, seed_estate
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.sandbox.runner import waiting_for_approval

from support import get_custom, wait_for_condition, wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PLURALS = {kind.kind: kind.plural for kind in ALL_KINDS}
# The examples refer to the shop project of devopsproject.yaml, as they do in the sandbox.
PROJECT = ROOT / "examples" / "devopsproject.yaml"
# A verified remediation needs one whole minute of metrics after it acts.
SLOW_EXAMPLES = {"remediation-test.yaml"}
TIMEOUTS = {"remediations": 180.0, "infradeployments": 120.0}
# Production examples wait for a person by design (production never auto-applies or acts).
WAITS_FOR_APPROVAL = {"infradeployments", "remediations"}


@pytest.fixture(scope="module")
def demo_estate(aws_url: str) -> Iterator[None]:
    """The sandbox's estate and its simulated traffic in the tests' moto (the names are the examples')."""
    estate = seed_estate(aws_url)
    with SimulatedTraffic(aws_url, estate, interval=2.0):
        yield


def _params() -> list[Any]:
    slow = [pytest.mark.slow, pytest.mark.timeout(300)]
    return [pytest.param(p, id=p.name, marks=slow if p.name in SLOW_EXAMPLES else []) for p in EXAMPLES]


def _settled(api: ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get_custom(api, plural, namespace, name)
    return obj if waiting_for_approval(obj) else None


@pytest.mark.parametrize("path", _params())
def test_example_applies_and_becomes_ready(
    path: Path, operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str,
    demo_estate: None,
) -> None:
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
        production = (get_custom(kube_api, plural, namespace, name).get("spec") or {}).get("environment") == "prod"
        if production and plural in WAITS_FOR_APPROVAL:
            # Settled once it shows exactly what to approve.
            obj = wait_until(lambda p=plural, n=name: _settled(kube_api, p, namespace, n),
                             timeout=TIMEOUTS[plural], what=f"{name} waiting for approval")
            assert obj["status"]["approval"]["digest"]
            continue
        wait_for_condition(kube_api, plural, namespace, name, "Ready", timeout=TIMEOUTS.get(plural, 30.0))


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sandbox_once_runs_the_examples_and_exits_zero(tmp_path: Path) -> None:
    """`make demo ARGS=--once`: the real CLI in a subprocess, as a user runs it, from a relative state
    directory as `make demo` uses (.sandbox): the runner Jobs run in directories of their own."""
    devopsctl = Path(sys.executable).parent / "devopsctl"
    result = subprocess.run(
        [str(devopsctl), "sandbox", "--once", "--timeout", "240", "--state-dir", "state",
         "--examples", str(ROOT / "examples")],
        cwd=tmp_path, capture_output=True, text=True, timeout=360, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "DevOpsProject/shop" in out
    assert "all examples settled: all Ready;" in out and "FAILED" not in out
    assert "InfraDeployment/shop-queue-prod waits for a human approval by design" in out
    assert "Remediation/restart-prod-api waits for a human approval by design" in out
    # The deployment: planned by the stand-in, the approval line; the test one applied with its DEPLOYED.md.
    assert "kubectl -n default patch infradeployment shop-queue-prod --type merge" in out
    assert "engine: stand-in Terraform (a test double)" in out
    assert "InfraDeployment/shop-queue-test (default): Ready" in out
    # The Investigation names the pattern and the cause; the test restart is verified; prod says how to approve.
    assert "pattern x10: ERROR Database connection timeout after <NUM> ms (attempt <NUM>)" in out
    assert "probable cause (high confidence): Timeouts connecting to the database" in out
    assert "Remediation/restart-test-api (default): Succeeded" in out
    assert "verification: HEALTHY after" in out
    assert ("kubectl --kubeconfig state/kubeconfig -n default patch remediation restart-prod-api "
            "--type merge -p '{\"spec\":{\"approval\":{\"approved\":true,\"assessmentDigest\":\"") in out
    assert '"approvedBy":"sandbox-user"' in out
    kubeconfig = (tmp_path / "state" / "kubeconfig").read_text()
    assert "server: http://127.0.0.1:" in kubeconfig
