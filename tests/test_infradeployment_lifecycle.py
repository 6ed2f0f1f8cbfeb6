"""The whole InfraDeployment lifecycle through the operator, the runner Jobs (run by the kubelet double),
the stand-in Terraform and moto: approval modes, re-plans, stale plans, restarts, signals, failures."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path

import boto3
import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator import metrics
from devops_operator.controllers import devopsproject
from devops_operator.controllers.infradeployment import DeploymentController
from devops_operator.kube.client import call_json
from devops_operator.runtime import Runtime
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import approve, deployment, get, jobs, patch_spec, project, state_of, wait_phase
from support import condition, get_custom, wait_until

TWO_QUEUES = {"main.tf": """
variable "name" {
  type = string
}
resource "aws_sqs_queue" "first" {
  name = "${var.name}-first"
}
resource "aws_sqs_queue" "second" {
  name = "${var.name}-second"
}
"""}
SECRET_VALUE = "sup3r-s3cret-token-value"
SENSITIVE_MODULE = {"main.tf": """
variable "name" {
  type = string
}
variable "api_token" {
  type      = string
  sensitive = true
}
resource "aws_sns_topic" "events" {
  name = "${var.name}-events"
}
output "topic_arn" {
  value = aws_sns_topic.events.arn
}
output "api_token" {
  value     = var.api_token
  sensitive = true
}
"""}

# End-to-end: the operator, runner Jobs as processes, the stand-in and moto (seconds per test).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def sqs(aws_url: str):  # type: ignore[no-untyped-def]
    return boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")


def queue_exists(aws_url: str, name: str) -> bool:
    try:
        sqs(aws_url).get_queue_url(QueueName=name)
        return True
    except sqs(aws_url).exceptions.QueueDoesNotExist:
        return False


def test_auto_approved_plan_is_applied_registered_and_outputs_published(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    CoreV1Api(kube_api).create_namespaced_secret(namespace, {"metadata": {"name": "topic-vars"},
                                                             "stringData": {"api_token": SECRET_VALUE}})
    deployment(kube_api, namespace, "topic", files=SENSITIVE_MODULE, approval={"mode": "auto"},
               outputs={"secretName": "topic-secrets"}, varsFrom=[{"kind": "Secret", "name": "topic-vars"}])
    ready = wait_phase(kube_api, namespace, "topic", "Ready", "Failed", "Stalled")
    status = ready["status"]
    assert status["phase"] == "Ready", status["message"]
    assert status["lastAppliedPlanId"] == status["plan"]["id"]
    assert status["approval"]["state"] == "AutoApproved"
    assert status["plan"]["engine"] == "stand-in Terraform (a test double)"
    assert condition(ready, "Applied")["status"] == "True" and status["verification"]["status"] == "PASS"
    assert status["outputs"]["names"] == ["topic_arn"] and status["outputs"]["sensitiveNames"] == ["api_token"]
    core = CoreV1Api(kube_api)
    outputs = core.read_namespaced_config_map("topic-outputs", namespace).data
    assert outputs["topic_arn"].startswith("arn:aws:sns:")
    secret = core.read_namespaced_secret("topic-secrets", namespace).data
    assert base64.b64decode(secret["api_token"]).decode() == SECRET_VALUE
    registry = core.read_namespaced_config_map("shop-test-registry", namespace).data
    assert f"{namespace}/topic" in registry["registry.json"]
    assert "## aws_sns_topic" in registry["DEPLOYED.md"] and "console.aws.amazon.com/sns" in registry["DEPLOYED.md"]
    assert "## Rollback" in registry["DEPLOYED.md"]
    # The sensitive output never leaks: status, Events, every ConfigMap and the runner logs are scanned.
    leaks = [json.dumps(get(kube_api, namespace, "topic"))]
    leaks += [json.dumps(e.to_dict(), default=str) for e in core.list_namespaced_event(namespace).items]
    leaks += [json.dumps(c.data) for c in core.list_namespaced_config_map(namespace).items]
    leaks += [kubelet.log(namespace, job) for job in jobs(kube_api, namespace)]
    assert all(SECRET_VALUE not in text for text in leaks)


def test_manual_approval_applies_only_the_named_plan_and_writing_it_replans_nothing(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "queue")
    waiting = wait_phase(kube_api, namespace, "queue", "AwaitingApproval")
    plan_id = waiting["status"]["plan"]["id"]
    assert f'"planId": "{plan_id}"' in waiting["status"]["message"]  # the exact kubectl patch line
    assert waiting["status"]["approval"]["state"] == "Pending"
    # An approval naming another plan approves nothing (bad input: void, nothing applied).
    approve(kube_api, namespace, "queue", "0000000000000000")
    void = wait_until(lambda: (s := get(kube_api, namespace, "queue").get("status") or {}).get(
        "approval", {}).get("state") == "Void" and s, what="void approval")
    assert "approves nothing" in void["message"]
    assert jobs(kube_api, namespace) == [f"queue-plan-{waiting['status']['plan']['request'][:12]}"]
    approve(kube_api, namespace, "queue", plan_id)
    ready = wait_phase(kube_api, namespace, "queue", "Ready", "Failed")
    assert ready["status"]["lastAppliedPlanId"] == plan_id, ready["status"]["message"]
    assert ready["status"]["approval"]["approvedBy"] == "alice"
    # Writing planId made no new plan: one plan Job and one apply Job, same plan id.
    assert [j.split("-")[1] for j in jobs(kube_api, namespace)] == ["apply", "plan"]
    assert queue_exists(aws_url, f"{namespace}-queue-jobs")


def test_production_never_auto_applies(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace, auto_approve=True)
    deployment(kube_api, namespace, "prodq", environment="prod", approval={"mode": "auto"})
    waiting = wait_phase(kube_api, namespace, "prodq", "AwaitingApproval")
    assert "production" in waiting["status"]["message"]
    assert condition(waiting, "Approved")["reason"] == "AwaitingApproval"
    assert not queue_exists(aws_url, f"{namespace}-prodq-jobs")


def test_non_destructive_mode_and_a_replan_on_change(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "nd", approval={"mode": "non-destructive"})
    first = wait_phase(kube_api, namespace, "nd", "Ready", "Failed")
    assert first["status"]["approval"]["state"] == "AutoApproved", first["status"]["message"]
    # A new name replaces the queue: destructive, so it waits for a person.
    patch_spec(kube_api, namespace, "nd", {"variables": {"name": f"{namespace}-nd2"}})
    second = wait_phase(kube_api, namespace, "nd", "AwaitingApproval")
    assert second["status"]["plan"]["id"] != first["status"]["plan"]["id"]
    assert second["status"]["plan"]["replace"] == 1
    assert queue_exists(aws_url, f"{namespace}-nd-jobs") and not queue_exists(aws_url, f"{namespace}-nd2-jobs")


def _bump_state_serial(api: ApiClient, namespace: str, deployment_name: str) -> None:
    name = f"tfstate-default-tfstate-{deployment_name}"
    secret = call_json(api, "GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    state = json.loads(gzip.decompress(base64.b64decode(secret["data"]["tfstate"])))
    state["serial"] += 1
    secret["data"]["tfstate"] = base64.b64encode(gzip.compress(json.dumps(state).encode())).decode()
    call_json(api, "PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body=secret)


def test_a_stale_plan_is_replanned_and_waits_again(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "stale", approval={"mode": "non-destructive"})
    wait_phase(kube_api, namespace, "stale", "Ready")
    patch_spec(kube_api, namespace, "stale", {"approval": {"mode": "manual"},
                                              "variables": {"name": f"{namespace}-st2"}})
    waiting = wait_phase(kube_api, namespace, "stale", "AwaitingApproval")
    old_plan = waiting["status"]["plan"]["id"]
    _bump_state_serial(kube_api, namespace, "stale")  # someone else changed the state since the plan
    before = metrics.TERRAFORM_STALE_PLANS._value.get()
    approve(kube_api, namespace, "stale", old_plan)
    again = wait_until(lambda: (o := get(kube_api, namespace, "stale"))["status"].get("phase") == "AwaitingApproval"
                       and o["status"]["plan"]["id"] != old_plan and o, timeout=180, what="a new plan")
    assert again["status"]["replans"] == 1
    assert metrics.TERRAFORM_STALE_PLANS._value.get() == before + 1
    assert not queue_exists(aws_url, f"{namespace}-st2-jobs")  # nothing was forced
    reasons = [e.reason for e in CoreV1Api(kube_api).list_namespaced_event(namespace).items]
    assert "StalePlan" in reasons


def test_an_operator_restart_mid_apply_starts_no_second_apply(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str,
    operator_config: object,
) -> None:
    project(kube_api, namespace)
    kubelet.hold_jobs.add("restart-apply-")
    try:
        deployment(kube_api, namespace, "restart", approval={"mode": "auto"})
        applying = wait_phase(kube_api, namespace, "restart", "Applying")
        assert applying["status"]["jobs"]["step"] == "apply"
        # A restarted operator: no memory of anything, only what the API holds.
        runtime = Runtime.build(operator_config, kube_api)  # type: ignore[arg-type]
        project_obj = get_custom(kube_api, "devopsprojects", namespace, "shop")
        devopsproject.evaluate("shop", namespace, project_obj["spec"], runtime)
        DeploymentController(runtime).reconcile(namespace, "restart")
        assert len([j for j in jobs(kube_api, namespace) if "-apply-" in j]) == 1
    finally:
        kubelet.release("restart-apply-")
    ready = wait_phase(kube_api, namespace, "restart", "Ready", "Failed")
    assert ready["status"]["phase"] == "Ready", ready["status"]["message"]
    assert len([j for j in kubelet.started_jobs if j.startswith("restart-apply-")]) == 1


def test_sigterm_mid_apply_is_forwarded_once_state_saved_and_lock_released_and_the_rest_replanned(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    kubelet.env_by_namespace[namespace] = {"DEVOPS_STANDIN_OPERATION_DELAY": "1.5"}
    deployment(kube_api, namespace, "sig", files=TWO_QUEUES, approval={"mode": "auto"})
    def holding() -> dict | None:
        obj = get(kube_api, namespace, "sig")
        lock = (obj.get("status") or {}).get("lock") or {}
        return obj if lock.get("operation") == "OperationTypeApply" else None

    locked = wait_until(holding, timeout=180, what="the apply holding the lock")
    lock = locked["status"]["lock"]
    job = lock["holderJob"]
    first_plan = locked["status"]["plan"]["id"]
    assert lock["holderPod"].startswith(job)
    wait_until(lambda: queue_exists(aws_url, f"{namespace}-sig-first"), timeout=120, what="the first queue")
    assert kubelet.signal_job(namespace, job)
    assert kubelet.signal_job(namespace, job)  # a second signal is never forwarded

    def interrupted() -> dict | None:
        events = call_json(kube_api, "GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        return next((e for e in events if e.get("reason") == "ApplyInterrupted"), None)

    event = wait_until(interrupted, timeout=120, what="the ApplyInterrupted Event")
    assert first_plan in event["message"] and "planned again" in event["message"]
    kept = CoreV1Api(kube_api).read_namespaced_secret(f"{job}-result", namespace).data
    result = json.loads(base64.b64decode(kept["result.json"]))
    assert result["signalsForwarded"] == 1 and result["interrupted"]
    # The saved plan is stale once part of it is applied: what remains is planned again (a new id) and applied.
    ready = wait_phase(kube_api, namespace, "sig", "Ready")
    assert ready["status"]["plan"]["id"] != first_plan
    assert (ready["status"]["plan"]["add"], ready["status"]["plan"]["destroy"]) == (1, 0)  # only the second queue
    assert queue_exists(aws_url, f"{namespace}-sig-second")
    lease = call_json(kube_api, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/"
                      "lock-tfstate-default-tfstate-sig")
    assert not lease["spec"].get("holderIdentity")
    state = state_of(kube_api, namespace, "tfstate-default-tfstate-sig")
    assert state is not None and len(state["resources"]) == 2


def _reading_back(api: ApiClient, namespace: str, name: str, gate: Path) -> dict:
    """The apply Job and its lock id once the apply is done and its runner reads the state back (held at the
    stand-in's gate)."""
    wait_until(lambda: Path(f"{gate}.waiting").exists(), timeout=180, what="the runner reading the state back")
    jobs = get(api, namespace, name)["status"]["jobs"]
    assert jobs["step"] == "apply"
    state = state_of(api, namespace, f"tfstate-default-tfstate-{name}")
    assert state is not None and state["resources"]  # the apply is saved
    return {"holderJob": jobs["current"]}


def _recorded(api: ApiClient, namespace: str, name: str) -> dict:
    """Ready, with the apply's effects recorded: registry, outputs, lastAppliedPlanId."""
    ready = wait_until(lambda: (o := get(api, namespace, name))["status"].get("lastAppliedPlanId")
                       and o["status"].get("phase") == "Ready" and o, timeout=180, what="the apply recorded")
    status = ready["status"]
    assert status["registry"]["resourceCount"] == 1 and not status.get("interruptedApply")
    assert status["outputs"]["names"] == ["queue_url"]
    core = CoreV1Api(api)
    assert "queue_url" in (core.read_namespaced_config_map(f"{name}-outputs", namespace).data or {})
    assert f"{namespace}-{name}-jobs" in core.read_namespaced_config_map("shop-test-registry", namespace).data[
        "DEPLOYED.md"]
    return status


def test_a_sigterm_while_the_runner_reads_back_a_finished_apply_does_not_lose_its_report(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str,
    tmp_path: Path,
) -> None:
    """The apply is done and saved; the runner's `show -json` of the state is not sent the signal (it holds
    no lock and saves nothing), so the finished apply is reported, not mistaken for an interrupted one."""
    project(kube_api, namespace)
    gate = tmp_path / "gate"
    kubelet.env_by_namespace[namespace] = {"DEVOPS_STANDIN_SHOW_STATE_GATE": str(gate)}
    deployment(kube_api, namespace, "late", approval={"mode": "auto"})
    running = _reading_back(kube_api, namespace, "late", gate)
    assert kubelet.signal_job(namespace, running["holderJob"])
    time.sleep(0.5)  # the signal handled while the read-back waits
    gate.touch()
    _recorded(kube_api, namespace, "late")
    reasons = [e.get("reason") for e in call_json(kube_api, "GET", f"/api/v1/namespaces/{namespace}/events")["items"]]
    assert "ApplyInterrupted" not in reasons


def test_an_apply_killed_after_it_finished_is_recorded_by_applying_the_empty_plan_made_after_it(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str,
    tmp_path: Path,
) -> None:
    """SIGKILL once the apply is saved, before the runner reported; the replacement pod (backoffLimit 1) finds
    its saved plan stale, and the plan made again has no changes: it is applied anyway, so the interrupted
    apply's effects are recorded (registry, outputs), not left out by a Ready "no changes"."""
    project(kube_api, namespace, terraform={"backoffLimit": 1})
    gate = tmp_path / "gate"
    kubelet.env_by_namespace[namespace] = {"DEVOPS_STANDIN_SHOW_STATE_GATE": str(gate)}
    saved_backoff, kubelet.backoff_seconds = kubelet.backoff_seconds, 1.0
    try:
        deployment(kube_api, namespace, "late", approval={"mode": "auto"})
        running = _reading_back(kube_api, namespace, "late", gate)
        gate.touch()  # the replacement pod's read-backs go through
        assert kubelet.kill_job(namespace, running["holderJob"])
        _recorded(kube_api, namespace, "late")
    finally:
        kubelet.backoff_seconds = saved_backoff


def test_a_pod_deleted_mid_apply_and_killed_after_its_grace_period_is_pod_deleted_with_the_lock_reported(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    """`kubectl delete pod --grace-period=2` while an AWS call takes longer: the kubelet SIGKILLs the runner
    before Terraform can save the state or release the lock, and the pod is gone with its exit code."""
    project(kube_api, namespace)
    kubelet.env_by_namespace[namespace] = {"DEVOPS_STANDIN_OPERATION_SECONDS": "30"}
    deployment(kube_api, namespace, "gone", files=TWO_QUEUES, approval={"mode": "auto"})

    def holding() -> dict | None:
        lock = (get(kube_api, namespace, "gone").get("status") or {}).get("lock") or {}
        return lock if lock.get("operation") == "OperationTypeApply" else None

    lock = wait_until(holding, timeout=180, what="the apply holding the lock")
    call_json(kube_api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{lock['holderPod']}",
              body={"gracePeriodSeconds": 2})
    failed = wait_phase(kube_api, namespace, "gone", "Failed", timeout=120)
    status = failed["status"]
    assert status["jobs"]["lastFailed"]["reason"] == "PodDeleted", json.dumps(status)[:3000]
    assert "status.lock" in status["message"] and "terraform import" in status["message"]
    def stale() -> dict | None:
        reported = get(kube_api, namespace, "gone")["status"].get("lock") or {}
        return reported if reported.get("stale") else None

    held = wait_until(stale, timeout=60, what="the lock reported stale")
    assert held["id"] == lock["id"]
    reasons = [e.get("reason") for e in call_json(kube_api, "GET", f"/api/v1/namespaces/{namespace}/events")["items"]]
    assert "ApplyFailed" in reasons and "ApplyInterrupted" not in reasons


def test_errored_state_is_kept_in_a_secret(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    kubelet.env_by_namespace[namespace] = {"DEVOPS_STANDIN_FAIL_STATE_WRITE": "1"}
    deployment(kube_api, namespace, "err", approval={"mode": "auto"})
    failed = wait_phase(kube_api, namespace, "err", "Failed")
    assert failed["status"]["erroredStateSecret"] == "err-errored-tfstate"
    assert "err-errored-tfstate" in failed["status"]["message"]
    kept = CoreV1Api(kube_api).read_namespaced_secret("err-errored-tfstate", namespace).data
    assert json.loads(base64.b64decode(kept["errored.tfstate"]))["resources"]


def test_an_oom_killed_job_keeps_its_log_after_the_pod_is_gone(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    project(kube_api, namespace)
    kubelet.oom_jobs.add("oom-plan-")
    try:
        deployment(kube_api, namespace, "oom", approval={"mode": "auto"})
        failed = wait_phase(kube_api, namespace, "oom", "Failed")
    finally:
        kubelet.oom_jobs.discard("oom-plan-")
    last = failed["status"]["jobs"]["lastFailed"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)
    assert "spec.runner.resources.memory" in failed["status"]["message"]
    core = CoreV1Api(kube_api)
    for pod in call_json(kube_api, "GET", f"/api/v1/namespaces/{namespace}/pods")["items"]:
        call_json(kube_api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}")
    assert call_json(kube_api, "GET", f"/api/v1/namespaces/{namespace}/pods")["items"] == []
    kept = core.read_namespaced_secret(last["logSecret"], namespace).data
    assert "killed" in base64.b64decode(kept["runner.log"]).decode()


def test_reconciliations_cost_an_exact_number_of_kubernetes_requests(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, kube_url: str, namespace: str,
    operator_config: object,
) -> None:
    """Counted on a controller of its own: starting a plan, and looking again at a plan that waits."""
    from devops_operator.kube.client import new_api_client

    project(kube_api, namespace)
    kubelet.hold_jobs.add("counted-plan-")
    try:
        client = new_api_client(kube_url)
        runtime = Runtime.build(operator_config, client)  # type: ignore[arg-type]
        project_obj = get_custom(kube_api, "devopsprojects", namespace, "shop")
        devopsproject.evaluate("shop", namespace, project_obj["spec"], runtime)
        controller = DeploymentController(runtime)
        deployment(kube_api, namespace, "counted", environment="prod")
        wait_phase(kube_api, namespace, "counted", "Planning")  # the operator's own controller started the plan
        before = dict(client.request_counts())
        # The Job exists: read the deployment, find the Job, list its pod, read the lock's Lease, write status.
        controller.reconcile(namespace, "counted")
        assert _delta(client.request_counts(), before) == {"get": 3, "list": 1, "patch": 1}
    finally:
        kubelet.release("counted-plan-")
    wait_phase(kube_api, namespace, "counted", "AwaitingApproval")
    before = dict(client.request_counts())
    # A plan waiting for approval: read it, read the lock's Lease (a stale lock is found), list the approval
    # admission policies and their bindings (this Runtime's first look: ApprovalPolicyEnforced), write status.
    controller.reconcile(namespace, "counted")
    assert _delta(client.request_counts(), before) == {"get": 2, "list": 2, "patch": 1}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {verb: count - before.get(verb, 0) for verb, count in after.items() if count - before.get(verb, 0)}
