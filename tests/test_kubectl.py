"""A real kubectl 1.33 against the emulated API server, as a user of the sandbox runs it: default flags only.

kubectl comes from a PyPI package (`make tools`, run by `make test`); without it these tests skip.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.operator_thread import OperatorThread

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = str(ROOT / ".tools/bin/kubectl") if (ROOT / ".tools/bin/kubectl").exists() else shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl: run `make tools` (make test does)")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

PROJECT = """
apiVersion: devops.fractary.io/v1alpha1
kind: DevOpsProject
metadata:
  name: {name}
spec:
  environments:
    - name: {env}
      {policy}: true
"""


def project(name: str = "cli", env: str = "dev", policy: str = "autoApprove") -> str:
    return PROJECT.format(name=name, env=env, policy=policy)


@pytest.fixture
def kubectl(kube_server: EmulatedKubernetes, tmp_path: Path, namespace: str) -> Kubectl:
    kubeconfig = tmp_path / "kubeconfig"
    kube_server.write_kubeconfig(kubeconfig, namespace=namespace)

    def run(*args: str, stdin: str | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "HOME": str(tmp_path), **(env or {})})
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return run


def editor(tmp_path: Path, *substitutions: tuple[str, str]) -> dict[str, str]:
    """An EDITOR for `kubectl edit`: a script that applies sed substitutions to the file it is given."""
    script = tmp_path / "edit.sh"
    expressions = " ".join(f"-e 's/{old}/{new}/'" for old, new in substitutions)
    script.write_text(f'#!/bin/sh\nexec sed -i {expressions} "$1"\n')
    script.chmod(0o755)
    return {"EDITOR": str(script), "KUBE_EDITOR": str(script)}


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_apply_get_wait_describe(kubectl: Kubectl, operator: OperatorThread) -> None:
    created = kubectl("apply", "-f", "-", stdin=project())
    assert "devopsproject.devops.fractary.io/cli created" in created.stdout

    kubectl("wait", "--for=condition=Ready", "devopsproject/cli", "--timeout=30s")
    rows = kubectl("get", "devopsprojects").stdout.splitlines()
    assert rows[0].split() == ["NAME", "READY", "PHASE", "PROJECT", "REGION", "ENVIRONMENTS", "AGE"]
    assert rows[1].split()[:3] == ["cli", "True", "Ready"]
    assert "devopsproject.devops.fractary.io/cli" in kubectl("get", "devops").stdout  # the category
    assert "cli" in kubectl("get", "dproj").stdout  # the short name

    described = kubectl("describe", "dproj", "cli").stdout
    assert "Validated" in described and "Example Resource Name:  cli-core-dev-api" in described

    # Re-applying a change is a merge patch: generation moves, the operator observes it.
    configured = kubectl("apply", "-f", "-", stdin=project(env="qa"))
    assert "configured" in configured.stdout
    kubectl("wait", "--for=jsonpath={.status.observedGeneration}=2", "devopsproject/cli", "--timeout=30s")
    names = kubectl("get", "dproj", "cli", "-o", "jsonpath={.status.environments[*].exampleResourceName}").stdout
    assert names == "cli-core-qa-api"

    # The operator's Events, as `kubectl get events` lists them.
    events = kubectl("get", "events").stdout
    assert table(events)[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "devopsproject/cli" in events


def test_schema_errors_reach_kubectl(kubectl: Kubectl) -> None:
    result = kubectl("apply", "-f", "-", stdin=project(env="Not Valid"), check=False)
    assert result.returncode != 0
    assert "spec.environments[0].name" in result.stderr


def test_a_typo_is_refused_naming_the_field(kubectl: Kubectl) -> None:
    typo = project(policy="autoAprove")
    for command in (("apply", "-f", "-"), ("create", "-f", "-"), ("apply", "--server-side", "-f", "-")):
        refused = kubectl(*command, stdin=typo, check=False)
        assert refused.returncode == 1, command
        assert 'strict decoding error: unknown field "spec.environments[0].autoAprove"' in refused.stderr, command
    assert kubectl("get", "dproj", "cli", check=False).returncode == 1  # nothing was stored

    warned = kubectl("apply", "--validate=warn", "-f", "-", stdin=typo)
    assert 'Warning: unknown field "spec.environments[0].autoAprove"' in warned.stderr
    assert "autoAprove" not in kubectl("get", "dproj", "cli", "-o", "jsonpath={.spec}").stdout  # pruned


def test_create_server_side_apply_and_diff(kubectl: Kubectl) -> None:
    assert "devopsproject.devops.fractary.io/made created" in kubectl(
        "create", "-f", "-", stdin=project(name="made")).stdout
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", stdin=project(name="ssa")).stdout
    assert kubectl("apply", "--server-side", "-f", "-", stdin=project(name="ssa", env="qa")).returncode == 0
    assert kubectl("get", "dproj", "ssa", "-o", "jsonpath={.spec.environments[*].name}").stdout == "qa"

    kubectl("apply", "-f", "-", stdin=project(name="diffed"))
    same = kubectl("diff", "-f", "-", stdin=project(name="diffed"))
    assert (same.returncode, same.stdout) == (0, "")
    changed = kubectl("diff", "-f", "-", stdin=project(name="diffed", env="prod"), check=False)
    assert changed.returncode == 1, changed.stderr  # 1: there are differences
    assert "-    name: dev" in changed.stdout and "+    name: prod" in changed.stdout
    assert kubectl("get", "dproj", "diffed", "-o", "jsonpath={.spec.environments[*].name}").stdout == "dev"  # dry run


def test_edit_with_a_non_interactive_editor(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("apply", "-f", "-", stdin=project(name="edited"))
    edited = kubectl("edit", "dproj", "edited", env=editor(tmp_path, ("    name: dev", "    name: qa")))
    assert "devopsproject.devops.fractary.io/edited edited" in edited.stdout
    assert kubectl("get", "dproj", "edited", "-o", "jsonpath={.spec.environments[*].name}").stdout == "qa"

    typo = kubectl("edit", "dproj", "edited", env=editor(tmp_path, ("- autoApprove: true", "- autoAprove: true")),
                   check=False)
    assert typo.returncode == 1
    assert 'unknown field "spec.environments[0].autoAprove"' in typo.stderr

    kubectl("create", "configmap", "settings", "--from-literal=level=info")
    kubectl("edit", "configmap", "settings", env=editor(tmp_path, ("level: info", "level: debug")))
    assert kubectl("get", "configmap", "settings", "-o", "jsonpath={.data.level}").stdout == "debug"


def test_explain_includes_nested_fields(kubectl: Kubectl) -> None:
    top = kubectl("explain", "dproj").stdout
    assert "KIND:       DevOpsProject" in top and "spec\t<Object>" in top
    nested = kubectl("explain", "dproj.spec.environments.credentials").stdout
    assert "FIELD: credentials <Object>" in nested
    assert "roleArn\t<string>" in nested and "enum: ambient, irsa, secret" in nested
    legacy = kubectl("explain", "--output=plaintext-openapiv2", "dproj.spec.environments").stdout  # OpenAPI v2
    assert "RESOURCE: environments <[]Object>" in legacy and "credentials\t<Object>" in legacy
    assert "Configuration data for pods to consume." in kubectl("explain", "configmap").stdout


def _self_signed_pair(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert, private = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, private


def test_create_generators_and_their_tables(kubectl: Kubectl, tmp_path: Path, namespace: str) -> None:
    cert, key = _self_signed_pair(tmp_path)
    # The operator's MissingCredentials message tells users to run exactly this (kubectl sends protobuf).
    kubectl("create", "secret", "generic", "shop-prod-aws", "--from-literal=aws_access_key_id=AKIA",
            "--from-literal=aws_secret_access_key=s3cr3t")
    kubectl("create", "secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}")
    kubectl("create", "secret", "docker-registry", "pull", "--docker-server=registry.example",
            "--docker-username=bot", "--docker-password=pw")
    kubectl("create", "configmap", "settings", "--from-literal=level=info", "--from-literal=region=eu-west-1")
    kubectl("create", "namespace", f"{namespace}-team")
    kubectl("create", "job", "migrate", "--image=busybox", "--", "echo", "done")

    secret = json.loads(kubectl("get", "secret", "shop-prod-aws", "-o", "json").stdout)
    assert base64.b64decode(secret["data"]["aws_secret_access_key"]).decode() == "s3cr3t"
    secrets = table(kubectl("get", "secrets").stdout)
    assert [secrets[0], *(row[:3] for row in secrets[1:])] == [
        ["NAME", "TYPE", "DATA", "AGE"],
        ["pull", "kubernetes.io/dockerconfigjson", "1"],
        ["shop-prod-aws", "Opaque", "2"],
        ["web-tls", "kubernetes.io/tls", "2"],
    ]
    assert [row[:2] for row in table(kubectl("get", "configmaps").stdout)] == [["NAME", "DATA"], ["settings", "2"]]
    namespaces = table(kubectl("get", "namespace", f"{namespace}-team").stdout)
    assert [namespaces[0], namespaces[1][:2]] == [["NAME", "STATUS", "AGE"], [f"{namespace}-team", "Active"]]
    jobs = table(kubectl("get", "jobs").stdout)
    assert jobs[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs[1][:3] == ["migrate", "Running", "0/1"]
    command = kubectl("get", "job", "migrate", "-o", "jsonpath={.spec.template.spec.containers[0].command}").stdout
    assert json.loads(command) == ["echo", "done"]


def test_get_events_and_pods_tables(kubectl: Kubectl, kube_server: EmulatedKubernetes, namespace: str) -> None:
    now = datetime.datetime.now(datetime.UTC)
    stamp = (now - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "shop.1"}, "type": "Warning",
             "reason": "MissingCredentials", "message": "create the Secret shop-prod-aws",
             "involvedObject": {"kind": "DevOpsProject", "name": "shop", "namespace": namespace},
             "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 2, "source": {"component": "devops-operator"}}
    kubectl("create", "-f", "-", stdin=json.dumps(event))
    header, row = table(kubectl("get", "events").stdout)
    assert header == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    # The stamp has whole seconds and kubectl takes its time: the age is 5m plus a second or two (5m1s).
    assert re.fullmatch(r"5m([0-9]s)?", row[0]), row
    assert row[1:] == ["Warning", "MissingCredentials", "devopsproject/shop", "create", "the", "Secret",
                       "shop-prod-aws"]
    wide = table(kubectl("get", "events", "-o", "wide").stdout)
    assert wide[0][-3:] == ["SEEN", "COUNT", "NAME"] and wide[1][-2:] == ["2", "shop.1"]

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runner"},
           "spec": {"containers": [{"name": "tf", "image": "runner"}, {"name": "log", "image": "tail"}]}}
    kubectl("create", "-f", "-", stdin=json.dumps(pod))
    status = {"status": {"phase": "Running", "containerStatuses": [
        {"name": "tf", "ready": True, "restartCount": 1, "state": {"running": {}}},
        {"name": "log", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
    ]}}
    requests.patch(f"{kube_server.url}/api/v1/namespaces/{namespace}/pods/runner/status", data=json.dumps(status),
                   headers={"Content-Type": "application/merge-patch+json"}, timeout=5).raise_for_status()
    pods = table(kubectl("get", "pods").stdout)
    assert [pods[0], pods[1][:4]] == [["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                                      ["runner", "1/2", "CrashLoopBackOff", "1"]]
