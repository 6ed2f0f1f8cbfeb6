"""Approval bound to the impact assessment's digest, dry runs, stale assessments, and an interruption
after acting: nothing is acted on without the right approval, and nothing is acted on twice."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient
from prometheus_client import REGISTRY

from devops_operator.aws.metering import METER
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import (
    aws,
    create,
    create_db,
    create_ecs_service,
    create_function,
    patch,
    project_manifest,
    ready_project,
    resource_name,
)
from test_remediation_actions import calls_made, log_entries, remediation, short, succeeded

from support import condition, get_custom, wait_for_condition, wait_until

PLURAL = "remediations"


def prod_scale(namespace: str, aws_url: str, **spec: Any) -> tuple[str, str, dict[str, Any]]:
    cluster, service = f"c-{short(namespace)}", resource_name("prod", f"web-{short(namespace)}")
    create_ecs_service(aws_url, cluster, service, desired=2)
    manifest = remediation("scale-up", {"type": "ecs-service", "id": service, "cluster": cluster}, "scale",
                           environment="prod", parameters={"desiredCount": 5}, **spec)
    return cluster, service, manifest


def desired(aws_url: str, cluster: str, service: str) -> int:
    found = aws(aws_url, "ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    return int(found["desiredCount"])


def approval_state(api: ApiClient, namespace: str, name: str, reason: str,
                   generation: int | None = None) -> dict[str, Any]:
    """The object once its Approved condition has `reason` for the generation asked (the current one)."""
    def check() -> dict[str, Any] | None:
        obj = get_custom(api, PLURAL, namespace, name)
        approved = condition(obj, "Approved") or {}
        wanted = generation or obj["metadata"]["generation"]
        observed = (obj.get("status") or {}).get("observedGeneration")
        return obj if approved.get("reason") == reason and observed == wanted else None
    return wait_until(check, timeout=30, what=f"{name} Approved reason {reason}")


def approve(api: ApiClient, namespace: str, name: str, digest: str, who: str = "alice") -> dict[str, Any]:
    return patch(api, namespace, PLURAL, name,
                 {"spec": {"approval": {"approved": True, "assessmentDigest": digest, "approvedBy": who}}})


def test_production_waits_for_an_approval_of_the_digest(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    cluster, service, manifest = prod_scale(namespace, aws_url)
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, manifest)
        obj = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")

    status = obj["status"]
    digest = status["impact"]["digest"]
    assert status["phase"] == "AwaitingApproval"
    assert status["impact"]["production"] is True and status["impact"]["approvalRequired"] is True
    assert status["approval"]["state"] == "Pending" and status["approval"]["digest"] == digest
    line = (f"kubectl -n {namespace} patch remediation scale-up --type merge -p "
            f"'{{\"spec\":{{\"approval\":{{\"approved\":true,\"assessmentDigest\":\"{digest}\","
            f"\"approvedBy\":\"<your user name>\"}}}}}}'")
    assert line in status["approval"]["message"]
    assert "a production environment: nothing proceeds without an approval" in status["message"]
    assert condition(obj, "Reconciling") is not None and condition(obj, "Stalled") is None
    assert "UpdateService" not in calls_made(measured, "ecs") and desired(aws_url, cluster, service) == 2
    gauge = REGISTRY.get_sample_value("devops_operator_remediation_awaiting_approval",
                                      {"namespace": namespace, "name": "scale-up"})
    assert gauge == 1

    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", digest)
        done = succeeded(kube_api, namespace, "scale-up")

    assert desired(aws_url, cluster, service) == 5
    assert calls_made(measured, "ecs")["UpdateService"] == 1
    assert done["status"]["approval"]["state"] == "Approved" and done["status"]["approval"]["approvedBy"] == "alice"
    assert condition(done, "Approved")["status"] == "True"
    [entry] = log_entries(kube_api, namespace)
    assert entry["approvedBy"] == "alice" and entry["digest"] == digest


def test_an_approval_of_another_digest_approves_nothing(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    cluster, service, manifest = prod_scale(namespace, aws_url)
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, manifest)
    digest = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")["status"]["impact"]["digest"]

    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", "0123456789abcdef")
        obj = approval_state(kube_api, namespace, "scale-up", "DigestMismatch")

    assert obj["status"]["approval"]["state"] == "Void"
    assert (f"the approval names 0123456789abcdef, but the current impact assessment is {digest}"
            in obj["status"]["message"])
    assert "UpdateService" not in calls_made(measured, "ecs") and desired(aws_url, cluster, service) == 2


def test_a_stale_assessment_is_made_again_and_needs_a_new_approval(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    cluster, service, manifest = prod_scale(namespace, aws_url)
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, manifest)
    seen = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")["status"]["impact"]["digest"]

    # Someone changes the service after the approver looked at the assessment.
    aws(aws_url, "ecs").update_service(cluster=cluster, service=service, desiredCount=4)
    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", seen)
        obj = approval_state(kube_api, namespace, "scale-up", "DigestMismatch")

    impact = obj["status"]["impact"]
    assert impact["digest"] != seen and impact["currentState"]["desiredCount"] == "4"
    assert impact["changes"] == [{"attribute": "desiredCount", "current": "4", "proposed": "5"}]
    assert "UpdateService" not in calls_made(measured, "ecs") and desired(aws_url, cluster, service) == 4

    approve(kube_api, namespace, "scale-up", impact["digest"])
    succeeded(kube_api, namespace, "scale-up")
    assert desired(aws_url, cluster, service) == 5


def test_an_expired_assessment_gets_a_new_digest(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    cluster, service, manifest = prod_scale(namespace, aws_url)
    manifest["spec"]["approval"] = {"expiresAfter": "2s"}
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, manifest)
    first = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")["status"]

    def renewed() -> dict[str, Any] | None:
        status = get_custom(kube_api, PLURAL, namespace, "scale-up")["status"]
        return status if status["impact"]["digest"] != first["impact"]["digest"] else None

    second = wait_until(renewed, timeout=30, what="a new assessment after expiresAfter")
    assert second["approval"]["state"] == "Pending" and second["approval"]["expiresAt"] > first["approval"]["expiresAt"]
    assert desired(aws_url, cluster, service) == 2


def test_a_dry_run_assesses_and_acts_on_nothing(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    function = resource_name("test", f"api-{short(namespace)}")
    create_function(aws_url, function)
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("dry", {"type": "lambda", "id": function}, "restart",
                                                        dryRun=True))
        obj = wait_until(lambda: _phase(kube_api, namespace, "dry", "Assessed"), timeout=30, what="a dry run")

    assert condition(obj, "Ready")["reason"] == "DryRun"
    assert obj["status"]["impact"]["digest"] and "actionResult" not in obj["status"]
    assert "UpdateFunctionConfiguration" not in calls_made(measured, "lambda")
    [entry] = log_entries(kube_api, namespace)
    assert entry["outcome"] == "Assessed"


def test_approval_required_outside_production_waits_too(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    function = resource_name("test", f"api-{short(namespace)}")
    create_function(aws_url, function)
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, remediation("r", {"type": "lambda", "id": function}, "restart",
                                                    approval={"required": True}))
    obj = approval_state(kube_api, namespace, "r", "AwaitingApproval")
    assert obj["status"]["impact"]["production"] is False and obj["status"]["impact"]["approvalRequired"] is True


def _phase(api: ApiClient, namespace: str, name: str, phase: str) -> dict[str, Any] | None:
    obj = get_custom(api, PLURAL, namespace, name)
    return obj if (obj.get("status") or {}).get("phase") == phase else None


def refuse_the_second_status_write(server: EmulatedKubernetes, namespace: str, name: str) -> None:
    """The write recording the action's completion is refused once (the API server restarting), as an
    operator stopping right after the AWS call would leave it."""
    path = f"/apis/devops.fractary.io/v1alpha1/namespaces/{namespace}/remediations/{name}/status"
    refused = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
               "reason": "ServiceUnavailable", "message": "refused by the test"}

    def react() -> None:
        view = server.emulator[f"patch {path}"]
        seen = len(view)
        view[seen + 1: seen + 2] << 503 << refused

    server.call(react)


def test_an_interruption_after_acting_does_not_act_twice(
    operator: OperatorThread, kube_api: ApiClient, kube_server: EmulatedKubernetes, aws_url: str, namespace: str
) -> None:
    """The next attempt starts from the recorded intent, finds the restart in the function's configuration,
    and does not send it again."""
    function = resource_name("test", f"api-{short(namespace)}")
    create_function(aws_url, function)
    ready_project(kube_api, namespace)
    refuse_the_second_status_write(kube_server, namespace, "restart")

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("restart", {"type": "lambda", "id": function}, "restart"))
        status = succeeded(kube_api, namespace, "restart")["status"]

    assert calls_made(measured, "lambda")["UpdateFunctionConfiguration"] == 1
    assert status["actionResult"]["message"] == ("restart confirmed from the resource's state after an interruption "
                                                 "(the action was not sent again)")
    assert len(log_entries(kube_api, namespace)) == 1


def test_an_interrupted_reboot_that_cannot_be_confirmed_is_not_sent_again(
    operator: OperatorThread, kube_api: ApiClient, kube_server: EmulatedKubernetes, aws_url: str, namespace: str
) -> None:
    """moto's instance is `available` again at once and records no reboot event: the operator cannot tell
    whether its reboot happened, so it stops (Failed) instead of rebooting a second time."""
    db = resource_name("test", f"db-{short(namespace)}")
    create_db(aws_url, db)
    ready_project(kube_api, namespace)
    refuse_the_second_status_write(kube_server, namespace, "reboot")

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("reboot", {"type": "rds", "id": db}, "reboot"))
        obj = wait_until(lambda: _phase(kube_api, namespace, "reboot", "Failed"), timeout=30, what="Failed")

    assert calls_made(measured, "rds")["RebootDBInstance"] == 1
    assert condition(obj, "Stalled")["reason"] == "InterruptedUncertain"
    assert "it is not done again (acting twice is worse)" in obj["status"]["actionResult"]["message"]


def test_an_ended_remediation_never_acts_again(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    function = resource_name("test", f"api-{short(namespace)}")
    create_function(aws_url, function)
    ready_project(kube_api, namespace)
    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("restart", {"type": "lambda", "id": function}, "restart"))
        succeeded(kube_api, namespace, "restart")
        patch(kube_api, namespace, PLURAL, "restart", {"spec": {"reason": "once more, please"}})
        obj = wait_until(lambda: _observed(kube_api, namespace, "restart", 2), timeout=30, what="generation 2")
    assert obj["status"]["phase"] == "Succeeded"
    assert "never acts again" in obj["status"]["message"]
    assert calls_made(measured, "lambda")["UpdateFunctionConfiguration"] == 1


def _observed(api: ApiClient, namespace: str, name: str, generation: int) -> dict[str, Any] | None:
    obj = get_custom(api, PLURAL, namespace, name)
    return obj if (obj.get("status") or {}).get("observedGeneration") == generation else None


# --- the two-person rule (approvals.safeguard, as for InfraDeployments) -----------------------------------

SPEC_CHANGED_BY = "devops.fractary.io/spec-changed-by"


def _events(api: ApiClient, namespace: str, name: str, reason: str) -> list[str]:
    from kubernetes.client import CoreV1Api
    return [str(e.message) for e in CoreV1Api(api).list_namespaced_event(namespace).items
            if e.reason == reason and e.involved_object.name == name]


def test_under_the_two_person_rule_the_author_of_a_remediation_cannot_approve_it(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    cluster, service, manifest = prod_scale(namespace, aws_url)
    project = project_manifest()
    project["spec"]["environments"][1]["requireDistinctApprover"] = True
    create(kube_api, namespace, "devopsprojects", project)
    wait_for_condition(kube_api, "devopsprojects", namespace, "shop", "Ready")
    manifest["metadata"]["annotations"] = {SPEC_CHANGED_BY: "alice"}  # as admission records alice's create
    create(kube_api, namespace, PLURAL, manifest)
    digest = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")["status"]["impact"]["digest"]

    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", digest, who="alice")
        own = approval_state(kube_api, namespace, "scale-up", "SameApprover")
        wait_until(lambda: _events(kube_api, namespace, "scale-up", "SameApprover"), what="a SameApprover Event")

    status = own["status"]
    assert status["phase"] == "AwaitingApproval" and status["approval"]["state"] == "Pending"
    assert condition(own, "Stalled")["status"] == "True"  # type: ignore[index]
    assert status["message"].startswith(
        "the approval by alice is refused: the two-person rule is on (requireDistinctApprover in the project's "
        "environment) and alice last changed the spec (devops.fractary.io/spec-changed-by): another user must "
        "approve (spec.approval.approvedBy)")
    assert any("alice last changed the spec" in m for m in _events(kube_api, namespace, "scale-up", "SameApprover"))
    assert "UpdateService" not in calls_made(measured, "ecs") and desired(aws_url, cluster, service) == 2
    assert "actionResult" not in status

    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", digest, who="bob")
        done = succeeded(kube_api, namespace, "scale-up")

    assert calls_made(measured, "ecs")["UpdateService"] == 1 and desired(aws_url, cluster, service) == 5
    assert done["status"]["approval"]["approvedBy"] == "bob"
    [entry] = log_entries(kube_api, namespace)
    assert entry["approvedBy"] == "bob"


def test_in_a_labelled_namespace_a_remediation_without_a_recorded_author_approves_nothing(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    from kubernetes.client import CoreV1Api
    CoreV1Api(kube_api).create_namespace({"metadata": {"name": namespace, "labels": {
        "devops.fractary.io/require-distinct-approver": "true"}}})
    cluster, service, manifest = prod_scale(namespace, aws_url)
    ready_project(kube_api, namespace)  # requireDistinctApprover unset: the namespace label switches the rule on
    create(kube_api, namespace, PLURAL, manifest)
    digest = approval_state(kube_api, namespace, "scale-up", "AwaitingApproval")["status"]["impact"]["digest"]

    with METER.measure() as measured:
        approve(kube_api, namespace, "scale-up", digest, who="bob")
        unknown = approval_state(kube_api, namespace, "scale-up", "SpecAuthorUnknown")

    assert f"namespace {namespace} is labelled devops.fractary.io/require-distinct-approver=true" in unknown[
        "status"]["message"]
    assert "nobody is recorded as the spec's author" in unknown["status"]["message"]
    assert condition(unknown, "Stalled")["status"] == "True"  # type: ignore[index]
    assert "UpdateService" not in calls_made(measured, "ecs") and desired(aws_url, cluster, service) == 2

    # alice records herself as the author with a change of the spec; bob's approval then proceeds.
    with METER.measure() as measured:
        patch(kube_api, namespace, PLURAL, "scale-up", {
            "metadata": {"annotations": {SPEC_CHANGED_BY: "alice"}},
            "spec": {"reason": "errors after the 14:00 deploy, seen by alice"}})
        done = succeeded(kube_api, namespace, "scale-up")  # bob's approval, standing, now counts
    assert calls_made(measured, "ecs")["UpdateService"] == 1 and desired(aws_url, cluster, service) == 5
    assert done["status"]["approval"]["approvedBy"] == "bob"
