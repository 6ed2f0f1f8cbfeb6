"""A Remediation resumed from its status decides again before it sends anything: ownership and approval,
against the spec as frozen in status (issue 14, 13b)."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.aws.metering import METER
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import create, patch, ready_project
from test_remediation_actions import calls_made
from test_remediation_approval import PLURAL, approval_state, approve, desired, prod_scale

from support import condition, wait_until


def listed(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The object read through a list (the test's reads must not use up the refusals of the operator's GETs)."""
    items = CustomObjectsApi(api).list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL)["items"]
    return dict(next(item for item in items if item["metadata"]["name"] == name))


def refuse_the_read_after_the_intent(server: EmulatedKubernetes, namespace: str, name: str) -> None:
    """The second read of the object from now (the one right after the intent is recorded, before the action is
    sent) is refused, as an operator stopping between recording its intent and calling AWS would leave it; and
    the next one too (kopf's first retry), so that the approver's change of mind is in before it resumes."""
    path = f"/apis/devops.fractary.io/v1alpha1/namespaces/{namespace}/{PLURAL}/{name}"
    refused = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
               "reason": "ServiceUnavailable", "message": "refused by the test"}

    def react() -> None:
        view = server.emulator[f"get {path}"]
        seen = len(view)
        view[seen + 1: seen + 3] << 503 << refused

    server.call(react)


def test_a_withdrawn_approval_stops_an_interrupted_action_from_being_sent(
    operator: OperatorThread, kube_api: ApiClient, kube_server: EmulatedKubernetes, aws_url: str, namespace: str
) -> None:
    cluster, service, manifest = prod_scale(namespace, aws_url)
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, manifest)
    digest = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")["status"]["impact"]["digest"]

    refuse_the_read_after_the_intent(kube_server, namespace, "scale-up")
    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", digest)
        acting = wait_until(lambda: (o := listed(kube_api, namespace, "scale-up"))["status"].get(
            "phase") == "Acting" and o, timeout=30, what="the intent recorded")
        assert acting["status"]["actionResult"]["intent"] and not acting["status"]["actionResult"].get("completedAt")
        # The approver changes their mind before the operator comes back to it.
        patch(kube_api, namespace, PLURAL, "scale-up", {"spec": {"approval": {"approved": False}}})
        back = wait_until(lambda: (o := listed(kube_api, namespace, "scale-up"))["status"].get(
            "phase") == "AwaitingApproval" and o, timeout=60, what="the resumed remediation waiting again")

    assert "UpdateService" not in calls_made(measured, "ecs") and desired(aws_url, cluster, service) == 2
    assert "the interrupted action was not sent" in back["status"]["message"] or condition(
        back, "Approved")["status"] == "False"  # type: ignore[index]
    assert not (back["status"].get("actionResult") or {}).get("completedAt")
