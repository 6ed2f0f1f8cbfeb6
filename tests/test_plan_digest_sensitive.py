"""Plans that differ only in a sensitive value get different plan ids (issue 14, item 13a).

The attack first: sensitive values were masked before the plan digest, so two plans differing only in one
(a password, a token) had one digest, and an approval of one approved the other. Now each sensitive value is
folded into the digest as an HMAC-SHA256 under the deployment's own key, a Secret the operator creates and
hands to the runner by reference; the value itself never reaches status, ConfigMaps or Events.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.infradeployment import REPLAN_ANNOTATION
from devops_operator.kube.client import call_json
from devops_operator.runner.main import Runner
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.planjson import summarize_plan
from devops_operator.terraform.request import PLAN_KEY_ENV, RunRequest, plan_key_secret

from deployments import approve, deployment, get, jobs, project
from support import wait_until

KEY = bytes(range(32))


def _plan(secret: str, *, prior_secret: str | None = None) -> dict[str, Any]:
    plan: dict[str, Any] = {"format_version": "1.2", "resource_changes": [{
        "address": "aws_db_instance.main", "type": "aws_db_instance", "name": "main",
        "change": {"actions": ["update"], "before": {"name": "db", "password": prior_secret},
                   "after": {"name": "db", "password": secret, "tags": {"token": secret, "team": "a"}},
                   "before_sensitive": {"password": True}, "after_sensitive": {"password": True,
                                                                                "tags": {"token": True}}}}]}
    if prior_secret is not None:
        plan["prior_state"] = {"values": {"root_module": {"resources": [{
            "address": "aws_db_instance.main", "mode": "managed", "values": {"name": "db", "password": prior_secret},
            "sensitive_values": {"password": True}}]}}}
    return plan


# -- pure ------------------------------------------------------------------------------------------


def test_plans_differing_only_in_a_sensitive_value_get_different_digests_with_the_key() -> None:
    # Masked (no key: a Job of an older operator): the attack, one digest for two plans.
    assert summarize_plan(_plan("hunter2")).digest == summarize_plan(_plan("hunter3")).digest
    first = summarize_plan(_plan("hunter2"), sensitive_key=KEY)
    assert first.digest != summarize_plan(_plan("hunter3"), sensitive_key=KEY).digest
    # The prior state's sensitive values are bound as well: another state is another plan.
    assert (summarize_plan(_plan("x", prior_secret="old-1"), sensitive_key=KEY).digest
            != summarize_plan(_plan("x", prior_secret="old-2"), sensitive_key=KEY).digest)
    # Stable: the same value, the same digest; the summary never holds the value.
    assert summarize_plan(_plan("hunter2"), sensitive_key=KEY).digest == first.digest
    assert "hunter2" not in repr(first)
    # Another deployment's key: another digest, so a digest tells nothing across deployments.
    assert summarize_plan(_plan("hunter2"), sensitive_key=bytes(32)).digest != first.digest


def test_the_runner_reads_the_key_and_never_hands_it_to_the_engine(tmp_path: Any) -> None:
    request = RunRequest(step="plan", deployment="d", namespace="ns", owner={}, source={}, module_path=".",
                         engine="terraform", engine_version=None, backend_override={}, variables={})
    runner = Runner(request, None, tmp_path, {PLAN_KEY_ENV: KEY.hex(), "TF_LOG": "INFO"})  # type: ignore[arg-type]
    assert runner.plan_key == KEY
    assert PLAN_KEY_ENV not in runner.engine_env() and runner.engine_env()["TF_LOG"] == "INFO"


# -- end to end: the operator, the kubelet double, the stand-in and moto -------------------------------------

MODULE = {"main.tf": """
variable "name" {
  type = string
}
variable "password" {
  type      = string
  sensitive = true
}
resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = var.password
}
"""}


def _set_password(api: ApiClient, namespace: str, value: str) -> None:
    body = {"metadata": {"name": "db"}, "data": {"password": base64.b64encode(value.encode()).decode()}}
    try:
        CoreV1Api(api).create_namespaced_secret(namespace, body)
    except Exception:
        CoreV1Api(api).replace_namespaced_secret("db", namespace, body)


def _look_now(api: ApiClient, namespace: str, value: str) -> None:
    """A look now (a Secret's change is seen at the next one): the replan annotation."""
    CustomObjectsApi(api).patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments", "dbq",
                                                         {"metadata": {"annotations": {REPLAN_ANNOTATION: value}}})


def _waiting_plan(api: ApiClient, namespace: str, name: str, other_than: set[str]) -> dict[str, Any]:
    return wait_until(lambda: (s := get(api, namespace, name).get("status") or {}).get("phase") == "AwaitingApproval"
                      and s.get("plan", {}).get("id") not in other_than and s, timeout=180, what="a waiting plan")


def _everything_readable(api: ApiClient, namespace: str) -> str:
    """Status, every ConfigMap and every Event of the namespace: where a sensitive value must never be."""
    status = json.dumps(get(api, namespace, "dbq").get("status"))
    maps = json.dumps(call_json(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps"))
    events = json.dumps([e.message for e in CoreV1Api(api).list_namespaced_event(namespace).items])
    return status + maps + events


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_changing_a_sensitive_variable_while_a_plan_waits_makes_a_new_plan_id(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    project(kube_api, namespace)
    _set_password(kube_api, namespace, "first-s3cret-value")
    deployment(kube_api, namespace, "dbq", files=MODULE, approval={"mode": "manual"},
               variables={"name": f"{namespace}-db"}, varsFrom=[{"kind": "Secret", "name": "db"}])
    first = _waiting_plan(kube_api, namespace, "dbq", set())["plan"]
    # The key: a Secret of the operator's, owned by the deployment, reaching the runner only by reference.
    key = call_json(kube_api, "GET", f"/api/v1/namespaces/{namespace}/secrets/{plan_key_secret('dbq')}")
    assert key["metadata"]["ownerReferences"][0]["name"] == "dbq"
    pod_env = call_json(kube_api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"][0]["spec"][
        "template"]["spec"]["containers"][0]["env"]
    assert [e["valueFrom"] for e in pod_env if e["name"] == PLAN_KEY_ENV] == [
        {"secretKeyRef": {"name": plan_key_secret("dbq"), "key": "key"}}]

    _set_password(kube_api, namespace, "second-s3cret-value")  # only the sensitive value changes
    _look_now(kube_api, namespace, "second")
    second = _waiting_plan(kube_api, namespace, "dbq", {first["id"]})["plan"]
    assert second["id"] != first["id"]
    assert second["digest"] != first["digest"]  # the plan's content itself: the sensitive value is bound
    approve(kube_api, namespace, "dbq", first["id"])
    void = wait_until(lambda: (s := get(kube_api, namespace, "dbq").get("status") or {}).get(
        "approval", {}).get("state") == "Void" and s, what="the first plan's id approves nothing")
    assert "approves nothing" in void["message"]
    assert [j for j in jobs(kube_api, namespace) if "-apply-" in j] == []

    _set_password(kube_api, namespace, "first-s3cret-value")  # the first value again: the first content
    _look_now(kube_api, namespace, "third")
    third = _waiting_plan(kube_api, namespace, "dbq", {first["id"], second["id"]})["plan"]
    assert third["digest"] == first["digest"]
    readable = _everything_readable(kube_api, namespace)
    for value in ("first-s3cret-value", "second-s3cret-value", base64.b64decode(key["data"]["key"]).decode()):
        assert value not in readable
