"""Every manifest in examples/ is applied and must settle Ready (or wait for a human approval, where that is
what it shows): the examples cannot rot. They run against the sandbox's demo estate in moto, with its
simulated traffic, as in `make demo`."""

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
TIMEOUTS = {"remediations": 180.0}


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
    path: Path, operator: OperatorThread, kube_api: ApiClient, namespace: str, demo_estate: None
) -> None:
    ours = []
    if path != PROJECT:
        for manifest in kube_apply.load_manifests([PROJECT]):
            kube_apply.apply(kube_api, manifest, namespace=namespace)
    for manifest in kube_apply.load_manifests([path]):
        kube_apply.apply(kube_api, manifest, namespace=namespace)
        if manifest["kind"] in PLURALS:
            ours.append((PLURALS[manifest["kind"]], manifest["metadata"]["name"]))
    assert ours, f"{path.name} holds none of our kinds"
    for plural, name in ours:
        if (get_custom(kube_api, plural, namespace, name).get("spec") or {}).get("environment") == "prod" \
                and plural == "remediations":
            # Production waits for a person by design: settled once it shows what to approve.
            obj = wait_until(lambda p=plural, n=name: _settled(kube_api, p, namespace, n), timeout=30,
                             what=f"{name} waiting for approval")
            assert obj["status"]["approval"]["digest"] == obj["status"]["impact"]["digest"]
            continue
        wait_for_condition(kube_api, plural, namespace, name, "Ready", timeout=TIMEOUTS.get(plural, 30.0))


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sandbox_once_runs_the_examples_and_exits_zero(tmp_path: Path) -> None:
    """`make demo ARGS=--once`: the real CLI in a subprocess, as a user runs it."""
    devopsctl = Path(sys.executable).parent / "devopsctl"
    result = subprocess.run(
        [str(devopsctl), "sandbox", "--once", "--timeout", "240", "--state-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=360, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DevOpsProject/shop" in result.stdout
    assert ("all examples settled: all Ready; Remediation/restart-prod-api waits for a human approval by design"
            in result.stdout)
    # The Investigation names the pattern and the cause; the test restart is verified; prod says how to approve.
    assert "pattern x10: ERROR Database connection timeout after <NUM> ms (attempt <NUM>)" in result.stdout
    assert "probable cause (high confidence): Timeouts connecting to the database" in result.stdout
    assert "Remediation/restart-test-api (default): Succeeded" in result.stdout
    assert "verification: HEALTHY after" in result.stdout
    assert (f"kubectl --kubeconfig {tmp_path / 'kubeconfig'} -n default patch remediation restart-prod-api "
            "--type merge -p '{\"spec\":{\"approval\":{\"approved\":true,\"assessmentDigest\":\"") in result.stdout
    assert '"approvedBy":"sandbox-user"' in result.stdout
    kubeconfig = (tmp_path / "kubeconfig").read_text()
    assert "server: http://127.0.0.1:" in kubeconfig
