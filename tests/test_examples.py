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
from devops_operator.sandbox.operator_thread import OperatorThread

from support import wait_for_condition

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PLURALS = {kind.kind: kind.plural for kind in ALL_KINDS}
# The examples refer to the shop project of devopsproject.yaml, as they do in the sandbox.
PROJECT = ROOT / "examples" / "devopsproject.yaml"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_applies_and_becomes_ready(
    path: Path, operator: OperatorThread, kube_api: ApiClient, namespace: str
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
        wait_for_condition(kube_api, plural, namespace, name, "Ready", timeout=30)


def test_sandbox_once_runs_the_examples_and_exits_zero(tmp_path: Path) -> None:
    """`make demo ARGS=--once`: the real CLI in a subprocess, as a user runs it."""
    devopsctl = Path(sys.executable).parent / "devopsctl"
    result = subprocess.run(
        [str(devopsctl), "sandbox", "--once", "--timeout", "60", "--state-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DevOpsProject/shop" in result.stdout
    assert "all examples settled: all Ready" in result.stdout
    kubeconfig = (tmp_path / "kubeconfig").read_text()
    assert "server: http://127.0.0.1:" in kubeconfig
