"""The approval admission policies (config/admission/approvals.yaml), evaluated with a CEL evaluator:
approving is a right of its own, per environment, and the recorded approver is the requesting user.
Also the CRDs' CEL rules that freeze what an approval covers."""

from __future__ import annotations

import copy
import re
from typing import Any

import celpy
import pytest

from devops_operator.api.crdgen import render_all

from admission_harness import Grant, admit, policies, policy_named

NS = "shop"
DEPLOYER: list[Grant] = []  # may create and edit (plain RBAC, not modelled here), but not approve


def approver(kind: str, *environments: str) -> list[Grant]:
    return [(kind, NS, None, "approve"), *[("environments", NS, env, "approve") for env in environments]]


def deployment(env: str = "prod", **approval: Any) -> dict[str, Any]:
    return {"apiVersion": "devops.fractary.io/v1alpha1", "kind": "InfraDeployment",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"environment": env, "projectRef": {"name": "shop"}, "approval": {"mode": "manual", **approval}}}


IDEP = policies()["infradeployments"]
REM = policies()["remediations"]
PREQ = policies()["permissionrequests"]


def test_editing_without_touching_the_approval_needs_no_approve_right() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["variables"] = {"size": "large"}
    assert admit(IDEP, new, old, user="dev", grants=DEPLOYER).allowed


def test_approving_a_plan_needs_the_approve_verb_on_the_kind_and_the_environment() -> None:
    old, new = deployment(), deployment(planId="a1b2c3d4e5f60718", approvedBy="alice")

    refused = admit(IDEP, new, old, user="alice", grants=DEPLOYER)
    assert not refused.allowed
    assert any("may not approve InfraDeployments in shop" in m for m in refused.messages)

    test_only = admit(IDEP, new, old, user="alice", grants=approver("infradeployments", "test"))
    assert not test_only.allowed
    assert test_only.messages == ["user alice may not approve in environment prod: that needs the approve verb on "
                                  "environments.devops.fractary.io named prod"]

    assert admit(IDEP, new, old, user="alice", grants=approver("infradeployments", "prod")).allowed
    # The same right in test approves test plans.
    assert admit(IDEP, deployment("test", planId="a1", approvedBy="alice"), deployment("test"), user="alice",
                 grants=approver("infradeployments", "test")).allowed


def test_the_approver_must_be_the_requesting_user() -> None:
    grants = approver("infradeployments", "prod")
    old = deployment()
    impostor = admit(IDEP, deployment(planId="a1", approvedBy="bob"), old, user="alice", grants=grants)
    assert impostor.messages == ["spec.approval.approvedBy must name the approving user (alice), not bob"]
    anonymous = admit(IDEP, deployment(planId="a1"), old, user="alice", grants=grants)
    assert anonymous.messages == ["spec.approval.approvedBy must name the approving user (alice), not nobody"]
    # Rewriting the recorded approver later is refused too, even with the right.
    approved = deployment(planId="a1", approvedBy="alice")
    renamed = admit(IDEP, deployment(planId="a1", approvedBy="carol"), approved, user="alice", grants=grants)
    assert not renamed.allowed


def test_an_approval_on_create_and_a_mode_change_need_the_right_and_withdrawing_does_not() -> None:
    created = admit(IDEP, deployment(planId="a1", approvedBy="dev"), None, user="dev", grants=DEPLOYER)
    assert not created.allowed
    to_auto = admit(IDEP, deployment("test", mode="auto"), deployment("test"), user="dev", grants=DEPLOYER)
    assert not to_auto.allowed
    withdrawn = admit(IDEP, deployment(), deployment(planId="a1", approvedBy="alice"), user="dev",
                      grants=DEPLOYER)
    assert not withdrawn.allowed  # the recorded approver changed (to nobody): refused for dev too
    revoked = deployment(approvedBy="alice")
    assert admit(IDEP, revoked, deployment(planId="a1", approvedBy="alice"), user="dev", grants=DEPLOYER).allowed


def remediation(**approval: Any) -> dict[str, Any]:
    return {"metadata": {"name": "restart-api", "namespace": NS},
            "spec": {"environment": "prod", "approval": {"required": False, "approved": False, **approval}}}


def test_remediation_approvals() -> None:
    grants = approver("remediations", "prod")
    approving = remediation(approved=True, assessmentDigest="abcdef123456", approvedBy="alice")
    assert not admit(REM, approving, remediation(), user="alice", grants=DEPLOYER).allowed
    assert admit(REM, approving, remediation(), user="alice", grants=grants).allowed
    # A new digest is a new approval; dropping `required` weakens the gate: both need the right.
    redigested = remediation(approved=True, assessmentDigest="0123456789ab", approvedBy="alice")
    assert not admit(REM, redigested, approving, user="dev", grants=DEPLOYER).allowed
    assert not admit(REM, remediation(), remediation(required=True), user="dev", grants=DEPLOYER).allowed
    assert admit(REM, remediation(required=True), remediation(), user="dev", grants=DEPLOYER).allowed


def permission(**approval: Any) -> dict[str, Any]:
    return {"metadata": {"name": "grant-s3", "namespace": NS},
            "spec": {"environment": "prod", "approval": {"approved": False, "denied": False, **approval}}}


def test_permission_request_decisions() -> None:
    grants = approver("permissionrequests", "prod")
    approving = permission(approved=True, statementDigest="abcdef123456", approvedBy="alice")
    assert not admit(PREQ, approving, permission(), user="alice", grants=DEPLOYER).allowed
    assert admit(PREQ, approving, permission(), user="alice", grants=grants).allowed
    denying = permission(denied=True, approvedBy="alice")
    assert not admit(PREQ, denying, permission(), user="alice", grants=DEPLOYER).allowed
    assert admit(PREQ, denying, permission(), user="alice", grants=grants).allowed


@pytest.mark.parametrize("plural", ["infradeployments", "remediations", "permissionrequests"])
def test_every_field_the_policies_read_exists_in_the_crd(plural: str) -> None:
    crd = next(c for c in render_all().values() if c["spec"]["names"]["plural"] == plural)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    text = str(policies()[plural])
    fields = set(re.findall(r"object\.spec\.approval\.(\w+)", text))
    assert fields, "the policy reads spec.approval"
    approval = spec["properties"]["approval"]["properties"]
    assert fields <= set(approval), fields - set(approval)
    assert "environment" in spec["properties"]


# --- the CRDs' rules that freeze what an approval covers ---------------------------------------------


def spec_rules(plural: str) -> list[dict[str, str]]:
    crd = next(c for c in render_all().values() if c["spec"]["names"]["plural"] == plural)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return list(spec.get("x-kubernetes-validations", []))


def transition_rule_holds(plural: str, new: dict[str, Any], old: dict[str, Any]) -> bool:
    (rule,) = [r for r in spec_rules(plural) if "oldSelf" in r["rule"]]
    env = celpy.Environment()
    program = env.program(env.compile(rule["rule"]))
    return bool(program.evaluate({"self": celpy.json_to_cel(new), "oldSelf": celpy.json_to_cel(old)}))


def test_an_approved_permission_request_cannot_widen_its_statement() -> None:
    base = {"projectRef": {"name": "shop"}, "environment": "prod", "actions": ["s3:PutBucketTagging"],
            "resources": ["arn:aws:s3:::shop-assets"], "approval": {"approved": True, "denied": False,
                                                                   "statementDigest": "abcdef123456"}}
    widened = copy.deepcopy(base)
    widened["actions"] = ["iam:*"]
    assert not transition_rule_holds("permissionrequests", widened, base)
    anywhere = copy.deepcopy(base)
    anywhere["resources"] = ["*"]
    assert not transition_rule_holds("permissionrequests", anywhere, base)
    principal = copy.deepcopy(base)
    principal["principalArn"] = "arn:aws:iam::123456789012:role/admin"  # adding a field is a change too
    assert not transition_rule_holds("permissionrequests", principal, base)
    # Un-approving first, then editing, is allowed; so is any edit of an unapproved request.
    unapproved = copy.deepcopy(base)
    unapproved["approval"]["approved"] = False
    assert transition_rule_holds("permissionrequests", unapproved, base)
    assert transition_rule_holds("permissionrequests", widened, unapproved)
    reasoned = copy.deepcopy(base)
    reasoned["reason"] = "needed for tagging"
    assert transition_rule_holds("permissionrequests", reasoned, base)  # reason is not covered


def test_an_approved_remediation_cannot_change_its_action_or_target() -> None:
    base = {"projectRef": {"name": "shop"}, "environment": "prod", "target": {"type": "lambda", "id": "api"},
            "action": "restart", "reason": "errors", "dryRun": False,
            "approval": {"approved": True, "assessmentDigest": "abcdef123456", "required": False}}
    for field, value in [("action", "scale"), ("target", {"type": "lambda", "id": "billing"}),
                         ("dryRun", True), ("environment", "test")]:
        changed = copy.deepcopy(base)
        changed[field] = value
        assert not transition_rule_holds("remediations", changed, base), field
    retitled = copy.deepcopy(base)
    retitled["reason"] = "errors spiking"
    assert transition_rule_holds("remediations", retitled, base)


def annotated(**annotations: str) -> dict[str, Any]:
    obj = deployment("prod")
    obj["metadata"]["annotations"] = {f"deploy.devops.fractary.io/{k.replace('_', '-')}": v
                                      for k, v in annotations.items()}
    return obj


def test_releasing_a_lock_or_abandoning_needs_the_approve_right_and_names_the_requester() -> None:
    grants = approver("infradeployments", "prod")
    old = deployment("prod")
    release = annotated(release_lock="lock-1", requested_by="alice")
    assert admit(IDEP, release, old, user="alice", grants=grants).allowed
    refused = admit(IDEP, release, old, user="alice", grants=DEPLOYER)
    assert not refused.allowed and any("may not release a state lock or abandon" in m for m in refused.messages)
    impostor = admit(IDEP, annotated(abandon="true", requested_by="bob"), old, user="alice", grants=grants)
    assert impostor.messages == ["the annotation deploy.devops.fractary.io/requested-by must name the requesting "
                                 "user (alice), not bob"]
    anonymous = admit(IDEP, annotated(abandon="true"), old, user="alice", grants=grants)
    assert not anonymous.allowed
    # Other annotations, and an unchanged request, need nothing.
    plain = annotated(replan_requested_at="1")
    assert admit(IDEP, plain, old, user="dev", grants=DEPLOYER).allowed
    assert admit(IDEP, release, release, user="dev", grants=DEPLOYER).allowed


# --- a DevOpsProject's approval settings (config/admission/projects.yaml) ---------------------------------

PROJ = policy_named("devops-operator-project-approvals")


def dproj(*environments: dict[str, Any], **spec: Any) -> dict[str, Any]:
    envs = list(environments) or [{"name": "test", "autoApprove": True, "credentials": {"source": "secret",
                                                                                         "secretRef": {"name": "t"}}},
                                  {"name": "prod", "production": True, "credentials": {"source": "secret",
                                                                                        "secretRef": {"name": "p"}}}]
    return {"metadata": {"name": "shop", "namespace": NS}, "spec": {"project": "shop", "environments": envs, **spec}}


def edited(base: dict[str, Any], env: int, **changes: Any) -> dict[str, Any]:
    new = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            new["spec"]["environments"][env].pop(key, None)
        else:
            new["spec"]["environments"][env][key] = value
    return new


def project_approver(*environments: str) -> list[Grant]:
    return approver("devopsprojects", *environments)


@pytest.mark.parametrize("field,value", [
    ("production", False), ("autoApprove", True), ("autoGrantPermissions", True),
    ("credentials", {"source": "secret", "secretRef": {"name": "test-keys"}}),
    ("discoveryCredentials", {"source": "irsa", "roleArn": "arn:aws:iam::123456789012:role/iam-admin"}),
    ("changeWindows", [{"schedule": "0 * * * *", "duration": "1h"}]),
    ("requireDistinctApprover", False),
    # Another part adds spec.environments[].runner: compared as a whole, whatever it holds.
    ("runner", {"image": "evil/runner:latest"}),
    ("runner", {"planCredentials": {"source": "secret", "secretRef": {"name": "p"}}}),
    ("runner", {"allowedSecrets": ["prod-db"]}),
])
def test_changing_a_production_approval_setting_needs_the_approve_verb_on_the_project_and_the_environment(
        field: str, value: Any) -> None:
    base = dproj()
    base["spec"]["environments"][1]["requireDistinctApprover"] = True
    base["spec"]["environments"][1]["runner"] = {"image": "ghcr.io/fractary/devops-operator:0.1.0",
                                                 "serviceAccountName": "prod-runner"}
    new = edited(base, 1, **{field: value})
    refused = admit(PROJ, new, base, user="dev", grants=DEPLOYER)
    assert not refused.allowed
    assert any("may not change the approval settings of DevOpsProjects in shop" in m and "environments prod" in m
               for m in refused.messages), refused.messages
    test_only = admit(PROJ, new, base, user="ops", grants=project_approver("test"))
    assert test_only.messages == ["user ops may not change the approval settings of environment(s) prod: that needs "
                                  "the approve verb on environments.devops.fractary.io named after each"]
    assert admit(PROJ, new, base, user="ops", grants=project_approver("prod")).allowed
    # Removing the field is a change too.
    removed = edited(base, 1, **{field: None})
    if field in base["spec"]["environments"][1]:
        assert not admit(PROJ, removed, base, user="dev", grants=DEPLOYER).allowed


def test_other_project_edits_need_no_approve_right_and_each_environment_is_its_own() -> None:
    base = dproj()
    retagged = copy.deepcopy(base)
    retagged["spec"]["requiredTags"] = ["team"]
    retagged["spec"]["environments"][1]["variables"] = {"size": "large"}
    retagged["spec"]["environments"][1]["region"] = "eu-west-1"
    assert admit(PROJ, retagged, base, user="dev", grants=DEPLOYER).allowed
    # Reordering environments changes nothing.
    reordered = copy.deepcopy(base)
    reordered["spec"]["environments"].reverse()
    assert admit(PROJ, reordered, base, user="dev", grants=DEPLOYER).allowed
    # A test-only approver may change test, not prod; adding or removing an environment is a change of it.
    assert admit(PROJ, edited(base, 0, autoApprove=False), base, user="ops", grants=project_approver("test")).allowed
    added = copy.deepcopy(base)
    added["spec"]["environments"].append({"name": "staging", "autoApprove": True})
    assert admit(PROJ, added, base, user="ops", grants=project_approver("staging")).allowed
    assert not admit(PROJ, added, base, user="ops", grants=project_approver("test")).allowed
    dropped = copy.deepcopy(base)
    del dropped["spec"]["environments"][1]
    assert not admit(PROJ, dropped, base, user="ops", grants=project_approver("test")).allowed
    renamed = edited(base, 1, name="production")  # prod removed, production added: both are changes
    assert not admit(PROJ, renamed, base, user="ops", grants=project_approver("production")).allowed


def test_grants_share_every_environment_and_creating_a_project_is_approving_it() -> None:
    base = dproj()
    shared = copy.deepcopy(base)
    shared["spec"]["allowedNamespaces"] = ["shop-*"]
    assert not admit(PROJ, shared, base, user="ops", grants=project_approver("test")).allowed
    assert admit(PROJ, shared, base, user="ops", grants=project_approver("test", "prod")).allowed
    selector = copy.deepcopy(base)
    selector["spec"]["allowedNamespaceSelector"] = {"matchLabels": {"shop": "client"}}
    assert not admit(PROJ, selector, base, user="dev", grants=DEPLOYER).allowed
    widened = copy.deepcopy(selector)
    widened["spec"]["allowedNamespaceSelector"] = {"matchLabels": {}}
    assert not admit(PROJ, widened, selector, user="ops", grants=project_approver("test")).allowed
    # Creating a project sets every environment's settings.
    created = admit(PROJ, base, None, user="dev", grants=DEPLOYER)
    assert not created.allowed and any("environments test, prod" in m for m in created.messages)
    assert admit(PROJ, base, None, user="ops", grants=project_approver("test", "prod")).allowed


# --- the two-person rule (config/admission/distinct-approver.yaml) ----------------------------------------

AUTHOR = policy_named("devops-operator-spec-changed-by")
DISTINCT = policy_named("devops-operator-distinct-approver")
SPEC_CHANGED_BY = "devops.fractary.io/spec-changed-by"


def authored(by: str | None, **approval: Any) -> dict[str, Any]:
    obj = deployment("prod", **approval)
    if by is not None:
        obj["metadata"]["annotations"] = {SPEC_CHANGED_BY: by}
    return obj


def resized(obj: dict[str, Any], by: str | None) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["spec"]["variables"] = {"size": "large"}
    new["metadata"]["annotations"] = {SPEC_CHANGED_BY: by} if by is not None else {}
    return new


def test_the_author_annotation_names_the_user_who_changed_the_spec_and_nobody_else() -> None:
    old = authored(None)
    assert admit(AUTHOR, resized(old, "alice"), old, user="alice", grants=DEPLOYER).allowed
    assert not admit(AUTHOR, resized(old, "bob"), old, user="alice", grants=DEPLOYER).allowed
    assert admit(AUTHOR, resized(old, None), old, user="alice", grants=DEPLOYER).allowed  # unused: nothing asked
    # Claiming authorship without changing the spec is refused (that is how an author would hide).
    claimed = authored("bob")
    refused = admit(AUTHOR, claimed, authored("alice"), user="bob", grants=DEPLOYER)
    assert refused.messages == ["the annotation devops.fractary.io/spec-changed-by may be set only with a change "
                                "of the spec, and only to the changing user (bob), not bob"]
    # Once set, a change of the spec must carry its author's own name, not the previous one's.
    by_alice = authored("alice")
    kept = admit(AUTHOR, resized(by_alice, "alice"), by_alice, user="bob", grants=DEPLOYER)
    assert kept.messages == ["this changes the spec, so the annotation devops.fractary.io/spec-changed-by must "
                             "name you (bob), not alice"]
    assert admit(AUTHOR, resized(by_alice, "bob"), by_alice, user="bob", grants=DEPLOYER).allowed
    # An approval is not a change of the spec: it leaves the annotation alone, and needs nothing of it.
    approving = authored("alice", planId="a1", approvedBy="carol")
    assert admit(AUTHOR, approving, by_alice, user="carol", grants=DEPLOYER).allowed
    # Removing the annotation is allowed (the operator then knows no author and, under the rule, approves nothing).
    assert admit(AUTHOR, authored(None), by_alice, user="bob", grants=DEPLOYER).allowed
    # Creating the object is changing the spec.
    assert admit(AUTHOR, authored("alice"), None, user="alice", grants=DEPLOYER).allowed
    assert not admit(AUTHOR, authored("alice"), None, user="bob", grants=DEPLOYER).allowed


def test_under_the_two_person_rule_the_author_of_the_spec_cannot_approve_it() -> None:
    by_alice = authored("alice")
    own = admit(DISTINCT, authored("alice", planId="a1", approvedBy="alice"), by_alice, user="alice",
                grants=DEPLOYER)
    assert own.messages == ["the two-person rule is on in shop: alice last changed the spec, so another user "
                            "must approve it"]
    assert admit(DISTINCT, authored("alice", planId="a1", approvedBy="bob"), by_alice, user="bob",
                 grants=DEPLOYER).allowed
    unknown = admit(DISTINCT, authored(None, planId="a1", approvedBy="bob"), authored(None), user="bob",
                    grants=DEPLOYER)
    assert not unknown.allowed and "nobody is recorded as the author" in unknown.messages[0]
    # Every change of the spec names its author there; an approval together with a change is the author's own.
    unsigned = admit(DISTINCT, resized(by_alice, None), by_alice, user="bob", grants=DEPLOYER)
    assert not unsigned.allowed
    both = resized(by_alice, "bob")
    both["spec"]["approval"] = {"mode": "manual", "planId": "a1", "approvedBy": "bob"}
    assert not admit(DISTINCT, both, by_alice, user="bob", grants=DEPLOYER).allowed
    assert admit(DISTINCT, resized(by_alice, "bob"), by_alice, user="bob", grants=DEPLOYER).allowed


def test_the_two_person_rule_is_bound_only_where_the_namespace_asks_for_it() -> None:
    from admission_harness import shipped
    bindings = {d["metadata"]["name"]: d for d in shipped() if d["kind"] == "ValidatingAdmissionPolicyBinding"}
    selector = bindings["devops-operator-distinct-approver"]["spec"]["matchResources"]["namespaceSelector"]
    assert selector == {"matchLabels": {"devops.fractary.io/require-distinct-approver": "true"}}
    assert "matchResources" not in bindings["devops-operator-spec-changed-by"]["spec"]


def authored_remediation(by: str | None, **approval: Any) -> dict[str, Any]:
    obj = {"apiVersion": "devops.fractary.io/v1alpha1", "kind": "Remediation",
           **remediation(**approval)}
    obj["spec"].update({"target": {"type": "ecs-service", "id": "web", "cluster": "c"}, "action": "scale",
                        "parameters": {"desiredCount": 5}})
    if by is not None:
        obj["metadata"]["annotations"] = {SPEC_CHANGED_BY: by}
    return obj


def rescaled(obj: dict[str, Any], by: str | None) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["spec"]["parameters"] = {"desiredCount": 8}
    new["metadata"]["annotations"] = {SPEC_CHANGED_BY: by} if by is not None else {}
    return new


def test_the_author_of_a_remediation_is_recorded_as_for_a_deployment() -> None:
    assert "remediations" in AUTHOR["spec"]["matchConstraints"]["resourceRules"][0]["resources"]
    old = authored_remediation(None)
    assert admit(AUTHOR, rescaled(old, "alice"), old, user="alice", grants=DEPLOYER).allowed
    assert not admit(AUTHOR, rescaled(old, "bob"), old, user="alice", grants=DEPLOYER).allowed
    by_alice = authored_remediation("alice")
    kept = admit(AUTHOR, rescaled(by_alice, "alice"), by_alice, user="bob", grants=DEPLOYER)
    assert kept.messages == ["this changes the spec, so the annotation devops.fractary.io/spec-changed-by must "
                             "name you (bob), not alice"]
    # Approving (spec.approval) is not a change of the spec; claiming authorship with it is refused.
    approving = authored_remediation("alice", approved=True, assessmentDigest="abcdef123456", approvedBy="carol")
    assert admit(AUTHOR, approving, by_alice, user="carol", grants=DEPLOYER).allowed
    claimed = authored_remediation("carol", approved=True, assessmentDigest="abcdef123456", approvedBy="carol")
    assert not admit(AUTHOR, claimed, by_alice, user="carol", grants=DEPLOYER).allowed
    assert not admit(AUTHOR, authored_remediation("alice"), None, user="bob", grants=DEPLOYER).allowed


def test_under_the_two_person_rule_the_author_of_a_remediation_cannot_approve_it() -> None:
    assert "remediations" in DISTINCT["spec"]["matchConstraints"]["resourceRules"][0]["resources"]
    by_alice = authored_remediation("alice")
    own = admit(DISTINCT, authored_remediation("alice", approved=True, assessmentDigest="abcdef123456",
                                               approvedBy="alice"), by_alice, user="alice", grants=DEPLOYER)
    assert own.messages == ["the two-person rule is on in shop: alice last changed the spec, so another user "
                            "must approve it"]
    approved_by_bob = authored_remediation("alice", approved=True, assessmentDigest="abcdef123456",
                                           approvedBy="bob")
    assert admit(DISTINCT, approved_by_bob, by_alice, user="bob", grants=DEPLOYER).allowed
    # A new digest is a new approval; withdrawing one (approved: false) is not one.
    redigested = authored_remediation("alice", approved=True, assessmentDigest="0123456789ab", approvedBy="alice")
    assert not admit(DISTINCT, redigested, approved_by_bob, user="alice", grants=DEPLOYER).allowed
    withdrawn = authored_remediation("alice", approved=False, assessmentDigest="abcdef123456", approvedBy="bob")
    assert admit(DISTINCT, withdrawn, approved_by_bob, user="alice", grants=DEPLOYER).allowed
    unknown = admit(DISTINCT, authored_remediation(None, approved=True, assessmentDigest="abcdef123456",
                                                   approvedBy="bob"), authored_remediation(None), user="bob",
                    grants=DEPLOYER)
    assert not unknown.allowed and "nobody is recorded as the author" in unknown.messages[0]
    # Creating a Remediation already approved is its author approving it.
    created = authored_remediation("alice", approved=True, assessmentDigest="abcdef123456", approvedBy="alice")
    assert not admit(DISTINCT, created, None, user="alice", grants=DEPLOYER).allowed
    assert not admit(DISTINCT, rescaled(by_alice, None), by_alice, user="bob", grants=DEPLOYER).allowed


@pytest.mark.parametrize("plural", ["infradeployments", "remediations"])
def test_every_approval_field_the_two_person_policy_reads_exists_in_the_crd(plural: str) -> None:
    crd = next(c for c in render_all().values() if c["spec"]["names"]["plural"] == plural)
    approval = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "approval"]["properties"]
    grant = next(v["expression"] for v in DISTINCT["spec"]["variables"] if v["name"] == "grant")
    # `variables.remediation ? (what a Remediation's approval names) : (what an InfraDeployment's names)`
    for_remediation, for_deployment = re.split(r"\)\s*:\s*\(", grant.split("variables.remediation", 1)[1])
    branch = for_remediation if plural == "remediations" else for_deployment
    fields = set(re.findall(r"object\.spec\.approval\.(\w+)", branch))
    assert fields and fields <= set(approval), fields - set(approval)
