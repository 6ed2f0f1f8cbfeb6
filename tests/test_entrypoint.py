"""The operator as deployed: `python -m devops_operator` and `kopf run -m devops_operator.handlers`
in a process of their own, configured only by environment variables, against a fresh emulated API
(so the in-process operator of other tests never touches these objects)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kubernetes.client import CoreV1Api, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.crdgen import render_all
from devops_operator.kube.client import new_api_client
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.aws import free_port

from support import wait_for_condition, wait_until

BIN = Path(sys.executable).parent
COMMANDS = {
    "python-m": [sys.executable, "-m", "devops_operator"],
    "kopf-run": [str(BIN / "kopf"), "run", "-m", "devops_operator.handlers", "--namespace", "entry", "--standalone"],
}


@pytest.fixture
def own_kube() -> Iterator[EmulatedKubernetes]:
    with EmulatedKubernetes() as server:
        for crd in render_all().values():
            server.register_crd(crd)
        yield server


@pytest.mark.parametrize("how", list(COMMANDS))
def test_operator_process_reconciles_serves_metrics_and_liveness(
    how: str, own_kube: EmulatedKubernetes, aws_url: str, tmp_path: Path
) -> None:
    metrics_port, liveness_port = free_port(), free_port()
    policy = tmp_path / "tenancy.yaml"  # as the chart mounts it: namespace entry may use ambient credentials
    policy.write_text(
        "apiVersion: devops.fractary.io/v1alpha1\nkind: TenancyPolicy\nrules:\n"
        "  - name: entry\n    namespaces: [entry]\n    credentialSources: [ambient]\n"
    )
    env = {
        "DEVOPS_OPERATOR_TENANCY_POLICY": str(policy),
        **os.environ,
        "DEVOPS_OPERATOR_KUBE_URL": own_kube.url,
        "DEVOPS_OPERATOR_AWS_ENDPOINT_URL": aws_url,
        "DEVOPS_OPERATOR_METRICS_PORT": str(metrics_port),
        "DEVOPS_OPERATOR_LIVENESS": f"http://127.0.0.1:{liveness_port}/healthz",
        "WATCH_NAMESPACES": "entry",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = list(COMMANDS[how])
    if how == "kopf-run":
        command += ["--liveness", env["DEVOPS_OPERATOR_LIVENESS"]]
    log = (tmp_path / "operator.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        api = new_api_client(own_kube.url)
        CoreV1Api(api).create_namespace({"metadata": {"name": "entry"}})
        CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, "entry", "devopsprojects", {
            "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "deployed"},
            "spec": {"environments": [{"name": "test"}]},
        })
        obj = wait_for_condition(api, "devopsprojects", "entry", "deployed", "Ready", timeout=60)
        assert obj["status"]["tenancyRule"] == "entry"

        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'devops_operator_reconcile_total{kind="DevOpsProject",outcome="success"} 1.0' in metrics
        assert 'devops_operator_reconcile_duration_seconds_bucket{kind="DevOpsProject",le="0.5",outcome="success"}' \
            in metrics
        assert 'devops_operator_aws_api_calls_total{operation="GetCallerIdentity",service="sts"} 1.0' in metrics
        assert 'devops_operator_resource_ready{kind="DevOpsProject",name="deployed",namespace="entry"} 1.0' in metrics

        def healthy() -> dict[str, object] | None:
            try:
                answer = requests.get(f"http://127.0.0.1:{liveness_port}/healthz", timeout=5)
            except requests.ConnectionError:
                return None
            return answer.json() if answer.status_code == 200 else None
        assert wait_until(healthy, what="liveness")["kubernetes"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)  # a shutdown that hangs fails here
        log.close()
    output = (tmp_path / "operator.log").read_text()
    assert returncode == 0, output
