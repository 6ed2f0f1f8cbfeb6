"""What the runner reports, where it lands and how much the operator believes it: through the operator, runner
Jobs (the kubelet double), the stand-in Terraform and moto."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import deployment, get, patch_spec, project, wait_phase
from support import condition

# A value key-name redaction cannot know is secret (UPSTREAM_DSN names no password, token or key): only where
# the log is kept protects it.
LAMBDA_VALUE = "xyzzy-upstream-9f8e7d6c"
LAMBDA_MODULE = {"main.tf": f"""
variable "name" {{
  type = string
}}
resource "aws_lambda_function" "worker" {{
  function_name = "${{var.name}}-worker"
  role          = "arn:aws:iam::123456789012:role/worker"
  environment {{
    variables = {{ UPSTREAM_DSN = "{LAMBDA_VALUE}" }}
  }}
}}
"""}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def queue_exists(aws_url: str, name: str) -> bool:
    sqs = boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")
    try:
        sqs.get_queue_url(QueueName=name)
        return True
    except sqs.exceptions.QueueDoesNotExist:
        return False


def _namespace_texts(api: ApiClient, namespace: str, deployment_name: str) -> list[str]:
    """Everything `view` can read in the namespace that the operator or the runner writes: every ConfigMap,
    every Event and the deployment's status (its spec holds the module inline: the tenant's own text)."""
    core = CoreV1Api(api)
    texts = [json.dumps(get(api, namespace, deployment_name)["status"])]
    texts += [json.dumps(e.to_dict(), default=str) for e in core.list_namespaced_event(namespace).items]
    texts += [json.dumps(c.to_dict(), default=str) for c in core.list_namespaced_config_map(namespace).items]
    return texts


def test_a_plan_s_values_reach_no_configmap_event_or_status_and_its_log_is_in_a_secret(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "fn", files=LAMBDA_MODULE)
    waiting = wait_phase(kube_api, namespace, "fn", "AwaitingApproval", "Failed", "Stalled")
    assert waiting["status"]["phase"] == "AwaitingApproval", waiting["status"]["message"]
    leaks = [text for text in _namespace_texts(kube_api, namespace, "fn") if LAMBDA_VALUE in text]
    assert leaks == []
    # The runner's log (the plan as Terraform shows it, values included) is kept, in a Secret the deployment owns.
    job = f"fn-plan-{waiting['status']['plan']['request'][:12]}"
    secret = CoreV1Api(kube_api).read_namespaced_secret(f"{job}-result", namespace)
    assert [o.kind for o in secret.metadata.owner_references] == ["InfraDeployment"]
    log = base64.b64decode(secret.data["runner.log"]).decode()
    assert LAMBDA_VALUE in log and "aws_lambda_function.worker will be created" in log
    assert json.loads(base64.b64decode(secret.data["result.json"]))["ok"] is True


def _lie_about_counts(result: dict[str, Any]) -> dict[str, Any]:
    """A runner claiming its plan only adds: no destroy, no replace."""
    return {**result, "add": result.get("add", 0) + result.get("replace", 0), "destroy": 0, "replace": 0,
            "changes": [{**c, "action": "create"} for c in result.get("changes") or []]}


def test_a_runner_that_lies_about_counts_does_not_get_a_destructive_plan_auto_approved(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "liar", approval={"mode": "non-destructive"})
    first = wait_phase(kube_api, namespace, "liar", "Ready", "Failed")
    assert first["status"]["phase"] == "Ready", first["status"]["message"]
    assert condition(first, "RunnerResult")["status"] == "True"
    kubelet.tamper_results["liar-plan-"] = _lie_about_counts
    try:
        # A new name replaces the queue: destructive, whatever the runner says.
        patch_spec(kube_api, namespace, "liar", {"variables": {"name": f"{namespace}-liar2"}})
        waiting = wait_phase(kube_api, namespace, "liar", "AwaitingApproval", "Ready", "Failed")
    finally:
        kubelet.tamper_results.clear()
    status = waiting["status"]
    assert status["phase"] == "AwaitingApproval", status["message"]
    assert (status["plan"]["replace"], status["plan"]["add"]) == (1, 0)
    assert [c["action"] for c in status["plan"]["summary"]] == ["replace"]
    mismatch = condition(waiting, "RunnerResult")
    assert (mismatch["status"], mismatch["reason"]) == ("False", "Mismatch")
    assert "replace 0 reported, 1 in the artefact" in mismatch["message"]
    events = CoreV1Api(kube_api).list_namespaced_event(namespace).items
    assert any(e.reason == "RunnerResultMismatch" and e.type == "Warning" for e in events)
    assert not queue_exists(aws_url, f"{namespace}-liar2-jobs")


def test_the_registry_holds_the_state_s_resources_not_the_runner_s_list(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    claimed = "arn:aws:sqs:us-east-1:123456789012:someone-elses-queue"
    kubelet.tamper_results["claims-apply-"] = lambda result: {**result, "resourceCount": 1, "resources": [{
        "address": "aws_sqs_queue.jobs", "type": "aws_sqs_queue", "name": "jobs", "id": "someone-elses-queue",
        "arn": claimed, "region": "us-east-1", "tags": {}}]}
    try:
        deployment(kube_api, namespace, "claims", approval={"mode": "auto"})
        ready = wait_phase(kube_api, namespace, "claims", "Ready", "Failed")
    finally:
        kubelet.tamper_results.clear()
    status = ready["status"]
    assert status["phase"] == "Ready", status["message"]
    assert status["registry"]["resourcesFrom"] == "state" and status["resourceCount"] == 1
    registry = json.loads(CoreV1Api(kube_api).read_namespaced_config_map("shop-test-registry", namespace).data[
        "registry.json"])
    assert claimed not in registry["resources"]
    assert [e["address"] for e in registry["resources"].values()] == ["aws_sqs_queue.jobs"]
    assert next(iter(registry["resources"])).endswith(f":{namespace}-claims-jobs")
    mismatch = condition(ready, "RunnerResult")
    assert (mismatch["status"], mismatch["reason"]) == ("False", "Mismatch")
    assert f"reported but not in the state: {claimed}" in mismatch["message"]
