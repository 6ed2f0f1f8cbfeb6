"""What the runner reports, where it lands and how much the operator believes it: through the operator, runner
Jobs (the kubelet double), the stand-in Terraform and moto."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import deployment, get, project, wait_phase

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
