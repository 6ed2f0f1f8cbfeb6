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
