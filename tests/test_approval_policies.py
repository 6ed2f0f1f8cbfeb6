"""Whether the approval admission policies are installed, as the operator tells (admission.py): pure
decisions from what was found, the names the shipped files use, and the configuration switch."""

from __future__ import annotations

from typing import Any

import pytest

from devops_operator import admission
from devops_operator.admission import Found, Presence, enforcement, found_in, required_policies
from devops_operator.config import OperatorConfig

from admission_harness import shipped


def named(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}, "spec": spec}


def installed(*names: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return ([named("ValidatingAdmissionPolicy", n) for n in names],
            [named("ValidatingAdmissionPolicyBinding", n, policyName=n, validationActions=["Deny"]) for n in names])


def test_the_operator_looks_for_exactly_the_names_the_shipped_files_use() -> None:
    docs = shipped()
    policies = {d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"}
    bindings = {d["spec"]["policyName"] for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"
                if "Deny" in d["spec"]["validationActions"]}
    assert set(admission.ALL_POLICIES) == policies == bindings
    assert found_in(*installed(*[d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]))\
        == {name: Found(Presence.INSTALLED) for name in admission.ALL_POLICIES}


def test_a_kind_relies_on_its_own_policy_and_the_projects() -> None:
    assert required_policies("InfraDeployment") == ("devops-operator-infradeployment-approvals",
                                                    "devops-operator-project-approvals")
    assert required_policies("Remediation", distinct_approver=True)[-2:] == (
        "devops-operator-spec-changed-by", "devops-operator-distinct-approver")
    found = found_in(*installed("devops-operator-infradeployment-approvals", "devops-operator-project-approvals"))
    assert enforcement(required_policies("InfraDeployment"), found).condition()[:3] == (
        "ApprovalPolicyEnforced", "True", "PoliciesInstalled")
    # The two-person rule relies on two more, which are not installed here.
    missing = enforcement(required_policies("InfraDeployment", distinct_approver=True), found)
    assert (missing.status, missing.reason) == ("False", "PoliciesMissing")
    assert "no ValidatingAdmissionPolicy devops-operator-spec-changed-by" in missing.message
    assert "kubectl apply -f config/admission/" in missing.message


def test_a_policy_without_a_denying_binding_is_not_enforced() -> None:
    policies, bindings = installed("devops-operator-infradeployment-approvals", "devops-operator-project-approvals")
    bindings[0]["spec"]["validationActions"] = ["Warn", "Audit"]
    found = found_in(policies, bindings)
    result = enforcement(required_policies("InfraDeployment"), found)
    assert not result.enforced
    assert "devops-operator-infradeployment-approvals is bound without validationActions Deny" in result.message
    found = found_in(policies, bindings[1:])
    assert "no ValidatingAdmissionPolicyBinding names it" in enforcement(required_policies("InfraDeployment"),
                                                                         found).message


def test_policies_the_operator_may_not_read_are_unknown_not_installed() -> None:
    found = found_in(None, None, "the operator may not list validatingadmissionpolicies: 403 Forbidden")
    result = enforcement(required_policies("Remediation"), found)
    assert (result.status, result.reason, result.enforced) == ("Unknown", "PoliciesUnreadable", False)
    assert "403 Forbidden" in result.message and "grant its ServiceAccount list" in result.message


@pytest.mark.parametrize("value,namespace,required", [
    ("", "shop", False), ("false", "shop", False), ("true", "shop", True), ("TRUE", "x", True),
    ("team-*,prod", "team-a", True), ("team-*,prod", "prod", True), ("team-*,prod", "staging", False),
])
def test_requiring_the_policies_is_a_switch_or_a_list_of_namespaces(value: str, namespace: str,
                                                                    required: bool) -> None:
    config = OperatorConfig.from_env({"DEVOPS_OPERATOR_REQUIRE_APPROVAL_POLICY": value})
    assert config.requires_approval_policy(namespace) is required


# --- through the operator: the emulated API, the kubelet double and the stand-in Terraform ----------------


def _install(api: Any) -> list[str]:
    from devops_operator.kube.client import call_json
    paths = []
    for doc in shipped():
        plural = ("validatingadmissionpolicies" if doc["kind"] == "ValidatingAdmissionPolicy"
                  else "validatingadmissionpolicybindings")
        call_json(api, "POST", f"{admission.API}/{plural}", body=doc)
        paths.append(f"{admission.API}/{plural}/{doc['metadata']['name']}")
    return paths


def _uninstall(api: Any, paths: list[str]) -> None:
    from kubernetes.client.exceptions import ApiException

    from devops_operator.kube.client import call_json
    for path in paths:
        try:
            call_json(api, "DELETE", path)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _events(api: Any, namespace: str, reason: str) -> list[str]:
    from kubernetes.client import CoreV1Api
    return [e.message for e in CoreV1Api(api).list_namespaced_event(namespace).items if e.reason == reason]


@pytest.mark.integration
def test_where_required_a_manual_approval_counts_only_once_the_policies_are_installed(
        operator: Any, kubelet: Any, kube_api: Any, namespace: str) -> None:
    from deployments import approve, deployment, get, jobs, project, wait_phase
    from support import condition, delete_namespaced_objects, wait_until

    ns = f"strict-{namespace}"  # the test operator requires the policies in strict-* namespaces
    installed_paths: list[str] = []
    try:
        project(kube_api, ns)
        deployment(kube_api, ns, "queue", environment="prod")
        waiting = wait_phase(kube_api, ns, "queue", "AwaitingApproval")
        policy = condition(waiting, "ApprovalPolicyEnforced")
        assert policy is not None and (policy["status"], policy["reason"]) == ("False", "PoliciesMissing")
        assert "kubectl apply -f config/admission/" in policy["message"]
        plan_id = waiting["status"]["plan"]["id"]

        approve(kube_api, ns, "queue", plan_id)
        refused = wait_until(lambda: (o := get(kube_api, ns, "queue"))["status"].get("message", "").startswith(
            "the approval by alice is refused") and o, what="the approval refused")
        assert condition(refused, "Stalled")["status"] == "True"  # type: ignore[index]
        assert condition(refused, "Approved")["reason"] == "ApprovalPolicyNotEnforced"  # type: ignore[index]
        assert refused["status"]["approval"]["state"] == "Pending"
        assert [j.split("-")[1] for j in jobs(kube_api, ns)] == ["plan"]  # nothing applied
        assert any("refused" in m for m in _events(kube_api, ns, "ApprovalPolicyNotEnforced"))

        installed_paths = _install(kube_api)  # the operator notices on its next read, without an edit
        ready = wait_phase(kube_api, ns, "queue", "Ready", "Failed", timeout=120)
        assert ready["status"]["lastAppliedPlanId"] == plan_id, ready["status"]["message"]
        assert ready["status"]["approval"]["approvedBy"] == "alice"
        enforced = condition(ready, "ApprovalPolicyEnforced")
        assert enforced is not None and (enforced["status"], enforced["reason"]) == ("True", "PoliciesInstalled")
    finally:
        _uninstall(kube_api, installed_paths)
        delete_namespaced_objects(kube_api, ns)


@pytest.mark.integration
def test_the_two_person_rule_refuses_the_author_of_the_spec_and_accepts_someone_else(
        operator: Any, kubelet: Any, kube_api: Any, namespace: str) -> None:
    from kubernetes.client import CustomObjectsApi

    from devops_operator.api.common import API_GROUP, API_VERSION

    from deployments import approve, deployment, get, jobs, project, wait_phase
    from support import condition, wait_until

    project(kube_api, namespace)
    CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, "devopsprojects", "shop", {"spec": {"environments": [
            {"name": "test", "autoApprove": True, "credentials": {"source": "ambient"}},
            {"name": "prod", "production": True, "requireDistinctApprover": True,
             "credentials": {"source": "ambient"}, "runner": {"planCredentials": {"source": "ambient"}}}]}})
    deployment(kube_api, namespace, "web", environment="prod")
    CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, "infradeployments", "web",
        {"metadata": {"annotations": {admission.SPEC_CHANGED_BY_ANNOTATION: "alice"}}})
    plan_id = wait_phase(kube_api, namespace, "web", "AwaitingApproval")["status"]["plan"]["id"]

    approve(kube_api, namespace, "web", plan_id, who="alice")
    own = wait_until(lambda: (o := get(kube_api, namespace, "web")) and (c := condition(o, "Approved")) and
                     c["reason"] == "SameApprover" and o, what="the author's own approval refused")
    assert "alice last changed the spec" in own["status"]["message"]
    assert condition(own, "Stalled")["status"] == "True"  # type: ignore[index]
    assert [j.split("-")[1] for j in jobs(kube_api, namespace)] == ["plan"]

    approve(kube_api, namespace, "web", plan_id, who="bob")
    ready = wait_phase(kube_api, namespace, "web", "Ready", "Failed", timeout=120)
    assert ready["status"]["lastAppliedPlanId"] == plan_id, ready["status"]["message"]
    assert ready["status"]["approval"]["approvedBy"] == "bob"
