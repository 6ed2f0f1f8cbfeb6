"""A kind whose controller has not landed says so on every object, instead of leaving it silent."""

from __future__ import annotations

from kubernetes.client import ApiClient

from devops_operator.controllers.unreconciled import NOT_RECONCILED
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import create

from support import condition, wait_for_condition


def test_costaudit_and_permissionrequest_say_they_are_not_reconciled_yet(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    create(kube_api, namespace, "costaudits", {
        "apiVersion": "devops.fractary.io/v1alpha1", "kind": "CostAudit", "metadata": {"name": "monthly"},
        "spec": {"projectRef": {"name": "shop"}, "environment": "test"}})
    create(kube_api, namespace, "permissionrequests", {
        "apiVersion": "devops.fractary.io/v1alpha1", "kind": "PermissionRequest", "metadata": {"name": "s3-read"},
        "spec": {"projectRef": {"name": "shop"}, "environment": "test", "actions": ["s3:GetObject"],
                 "resources": ["arn:aws:s3:::acme-shop-test-assets/*"]}})
    for plural, kind in (("costaudits", "CostAudit"), ("permissionrequests", "PermissionRequest")):
        name = "monthly" if plural == "costaudits" else "s3-read"
        obj = wait_for_condition(kube_api, plural, namespace, name, "Stalled")
        stalled = condition(obj, "Stalled")
        assert stalled is not None and stalled["reason"] == NOT_RECONCILED
        assert f"{kind} objects are not reconciled" in stalled["message"]
        assert obj["status"]["phase"] == "Stalled"
        ready = condition(obj, "Ready")
        assert ready is not None and ready["status"] == "False"
