"""InfraDeployment day 2, end to end: the operator, runner Jobs (the kubelet double), the stand-in Terraform
(a test double) and moto. Drift made in moto behind the operator's back, dependsOn, change windows, suspend,
destroy on delete from the snapshot, the abandon escape hatch, and a stale lock left by a killed runner."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator import metrics
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.kube.client import call_json
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import QUEUE_MODULE, approve, deployment, get, jobs, patch_spec, project, wait_phase
from support import condition, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BUCKET_MODULE = {"main.tf": """
variable "name" {
  type = string
}
resource "aws_s3_bucket" "assets" {
  bucket = "${var.name}-assets"
}
"""}
OUTPUT_MODULE = {"main.tf": """
variable "name" {
  type = string
}
resource "aws_sns_topic" "events" {
  name = var.name
}
output "topic_name" {
  value = aws_sns_topic.events.name
}
"""}


def sqs(aws_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")


def queue_url(aws_url: str, name: str) -> str | None:
    try:
        return str(sqs(aws_url).get_queue_url(QueueName=name)["QueueUrl"])
    except sqs(aws_url).exceptions.QueueDoesNotExist:
        return None


def annotate(api: ApiClient, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    CustomObjectsApi(api).patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                         name, {"metadata": {"annotations": annotations}})


def gone(api: ApiClient, namespace: str, name: str) -> bool:
    try:
        get(api, namespace, name)
    except ApiException as exc:
        return exc.status == 404
    return False


def events(api: ApiClient, namespace: str, reason: str) -> list[str]:
    return [str(e.message) for e in CoreV1Api(api).list_namespaced_event(namespace).items if e.reason == reason]


def gauge_becomes(gauge: Any, namespace: str, name: str, value: float) -> None:
    """The gauge of one deployment reaches `value` (recorded before the status that describes it)."""
    wait_until(lambda: gauge.labels(namespace, name)._value.get() == value, timeout=15,
               what=f"{gauge._name}{{{namespace}/{name}}} == {value}")


def drift_checked(api: ApiClient, namespace: str, name: str, checks: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(api, namespace, name)
        status = obj.get("status") or {}
        drift = status.get("drift") or {}
        done = int(drift.get("checks") or 0) >= checks and not (status.get("jobs") or {}).get("current")
        return obj if done and drift.get("lastChecked") else None
    return wait_until(check, timeout=180, interval=0.2, what=f"drift check {checks} of {name}")


def test_drift_behind_the_operators_back_is_detected_named_and_corrected_only_where_allowed(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "drifty", approval={"mode": "auto"}, driftDetection={"interval": "24h"})
    ready = wait_phase(kube_api, namespace, "drifty", "Ready")
    assert ready["status"]["drift"]["nextCheck"]  # scheduled an interval after the apply
    url = queue_url(aws_url, f"{namespace}-drifty-jobs")
    assert url is not None
    # A tag changed by hand: the drift check names the resource and the attribute, never the value.
    sqs(aws_url).tag_queue(QueueUrl=url, Tags={"team": "someone-else"})
    annotate(kube_api, namespace, "drifty", {"deploy.devops.fractary.io/drift-check-requested-at": "1"})
    drifted = drift_checked(kube_api, namespace, "drifty", 1)
    status = drifted["status"]
    assert status["drift"]["detected"] and status["drift"]["count"] == 1
    assert status["drift"]["resources"] == [{"address": "aws_sqs_queue.jobs", "action": "update",
                                             "attributes": ["tags"], "attributesTruncated": False}]
    found = condition(drifted, "Drifted")
    assert found["status"] == "True" and "aws_sqs_queue.jobs (tags changed)" in found["message"]
    assert "someone-else" not in str(status)
    assert condition(drifted, "Ready")["status"] == "True"  # the last apply stands; drift is its own condition
    assert events(kube_api, namespace, "DriftDetected")
    gauge_becomes(metrics.INFRA_DRIFTED_RESOURCES, namespace, "drifty", 1)
    assert sqs(aws_url).list_queue_tags(QueueUrl=url)["Tags"]["team"] == "someone-else"  # not corrected: not asked
    # autoCorrect in a test environment that auto-approves: a correcting plan through the same gate, applied.
    patch_spec(kube_api, namespace, "drifty", {"driftDetection": {"interval": "24h", "autoCorrect": True}})
    annotate(kube_api, namespace, "drifty", {"deploy.devops.fractary.io/drift-check-requested-at": "2"})
    wait_until(lambda: sqs(aws_url).list_queue_tags(QueueUrl=url)["Tags"].get("team") == "payments", timeout=180,
               what="the tag corrected")
    corrected = wait_until(lambda: (o := get(kube_api, namespace, "drifty"))["status"].get("phase") == "Ready"
                           and condition(o, "Drifted")["status"] == "False" and o, timeout=120,
                           what="the correction applied")
    assert corrected["status"]["replans"] >= 1 and corrected["status"]["approval"]["state"] == "AutoApproved"
    assert events(kube_api, namespace, "DriftCorrection") and events(kube_api, namespace, "DriftResolved")
    assert not corrected["status"]["drift"].get("detected")
    # A queue deleted by hand, checked again: named as deleted outside Terraform.
    sqs(aws_url).delete_queue(QueueUrl=url)
    patch_spec(kube_api, namespace, "drifty", {"driftDetection": {"interval": "24h", "autoCorrect": False}})
    annotate(kube_api, namespace, "drifty", {"deploy.devops.fractary.io/drift-check-requested-at": "3"})
    deleted = wait_until(lambda: (o := get(kube_api, namespace, "drifty"))["status"]["drift"].get("resources") == [
        {"address": "aws_sqs_queue.jobs", "action": "create", "attributes": [], "attributesTruncated": False}] and o,
        timeout=180, what="the deleted queue found")
    assert "deleted outside Terraform" in condition(deleted, "Drifted")["message"]


def test_production_drift_is_reported_never_corrected_automatically(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "pdrift", environment="prod", approval={"mode": "auto"},
               driftDetection={"interval": "24h", "autoCorrect": True})
    waiting = wait_phase(kube_api, namespace, "pdrift", "AwaitingApproval")
    approve(kube_api, namespace, "pdrift", waiting["status"]["plan"]["id"])
    wait_phase(kube_api, namespace, "pdrift", "Ready")
    sqs(aws_url).delete_queue(QueueUrl=queue_url(aws_url, f"{namespace}-pdrift-jobs"))
    # No annotation: the interval (shortened here) makes the check.
    patch_spec(kube_api, namespace, "pdrift", {"driftDetection": {"interval": "2s", "autoCorrect": True}})
    drifted = wait_until(lambda: (o := get(kube_api, namespace, "pdrift"))["status"].get("drift", {}).get(
        "detected") and o, timeout=120, what="the scheduled drift check")
    patch_spec(kube_api, namespace, "pdrift", {"driftDetection": {"interval": "24h", "autoCorrect": True}})
    assert drifted["status"]["drift"]["detected"]
    assert "production never corrects drift" in drifted["status"]["drift"]["correction"]
    assert drifted["status"]["phase"] == "Ready" and drifted["status"].get("replans", 0) == 0
    assert queue_url(aws_url, f"{namespace}-pdrift-jobs") is None  # nothing applied
    assert [j for j in jobs(kube_api, namespace) if "-apply-" in j] == [
        f"pdrift-apply-{waiting['status']['plan']['id'][:12]}"]


def test_depends_on_waits_replans_on_new_outputs_and_refuses_a_cycle(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "app", approval={"mode": "auto"}, dependsOn=[{"name": "network"}])
    waiting = wait_phase(kube_api, namespace, "app", "WaitingForDependencies")
    found = condition(waiting, "DependenciesReady")
    assert found["reason"] == "NotFound" and "spec.dependsOn[0]" in found["message"]
    assert f"{namespace}/network (does not exist)" in found["message"]
    assert jobs(kube_api, namespace) == []  # nothing planned before its dependency
    deployment(kube_api, namespace, "network", files=OUTPUT_MODULE, approval={"mode": "auto"},
               variables={"name": f"{namespace}-net-a"})
    wait_phase(kube_api, namespace, "network", "Ready")
    ready = wait_phase(kube_api, namespace, "app", "Ready")
    first = ready["status"]["dependencies"]["outputsDigest"]
    first_request = ready["status"]["plan"]["request"]
    # The dependency's outputs change: its dependent plans again.
    patch_spec(kube_api, namespace, "network", {"variables": {"name": f"{namespace}-net-b"}})
    replanned = wait_until(lambda: (o := get(kube_api, namespace, "app"))["status"].get("phase") == "Ready"
                           and o["status"]["dependencies"]["outputsDigest"] != first and o, timeout=180,
                           what="the dependent re-planned")
    assert replanned["status"]["plan"]["request"] != first_request
    # A cycle is refused, naming it.
    deployment(kube_api, namespace, "c1", dependsOn=[{"name": "c2"}])
    deployment(kube_api, namespace, "c2", dependsOn=[{"name": "c1"}])
    stalled = wait_phase(kube_api, namespace, "c2", "Stalled")
    assert condition(stalled, "DependenciesReady")["reason"] == "DependencyCycle"
    # Another tenant's namespace is not the operator's to read on this deployment's behalf.
    deployment(kube_api, namespace, "nosy", dependsOn=[{"name": "db", "namespace": "someone-else"}])
    refused = wait_phase(kube_api, namespace, "nosy", "Stalled")
    assert condition(refused, "DependenciesReady")["reason"] == "DependencyNotAllowed"
    assert "spec.dependsOn[0]" in refused["status"]["message"]
    assert f"{namespace}/c2 -> {namespace}/c1 -> {namespace}/c2" in stalled["status"]["message"]
    assert not [j for j in jobs(kube_api, namespace) if j.startswith(("c1-", "c2-"))]


def _project_with_window(api: ApiClient, namespace: str, schedule: str) -> None:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"project": "shop", "environments": [
            {"name": "test", "autoApprove": True, "credentials": {"source": "ambient"},
             "changeWindows": [{"kind": "allow", "schedule": schedule, "duration": "1h", "timeZone": "UTC"}]},
        ]},
    }
    CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", body)


def test_an_approved_plan_waits_for_the_change_window_and_applies_when_it_opens(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, kube_url: str, aws_url: str,
    namespace: str,
) -> None:
    opens = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    _project_with_window(kube_api, namespace, f"{opens.minute} {opens.hour} * * *")
    deployment(kube_api, namespace, "windowed", approval={"mode": "auto"})
    held = wait_phase(kube_api, namespace, "windowed", "WaitingForWindow")
    status = held["status"]
    assert status["approval"]["state"] == "AutoApproved"
    assert status["window"]["open"] is False and status["window"]["nextOpen"] == opens.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert opens.strftime("%Y-%m-%dT%H:%M:%SZ") in condition(held, "ChangeWindow")["message"]
    gauge_becomes(metrics.INFRA_WAITING_FOR_WINDOW, namespace, "windowed", 1)
    assert not [j for j in jobs(kube_api, namespace) if "-apply-" in j]
    assert queue_url(aws_url, f"{namespace}-windowed-jobs") is None
    # kubectl get idep shows it (the printer columns the CRD declares).
    table = requests.get(f"{kube_url}/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/infradeployments",
                         headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}, timeout=10).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    row = dict(zip(columns, table["rows"][0]["cells"], strict=False))
    assert row["Phase"] == "WaitingForWindow" and row["Next-Window"] == status["window"]["nextOpen"]
    # The window opens (here: the project's window is changed to one open now): the approved plan applies.
    now = datetime.now(UTC)
    project_obj = CustomObjectsApi(kube_api).get_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                          "devopsprojects", "shop")
    project_obj["spec"]["environments"][0]["changeWindows"][0]["schedule"] = f"{now.minute} {now.hour} * * *"
    CustomObjectsApi(kube_api).replace_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects",
                                                                "shop", project_obj)
    ready = wait_phase(kube_api, namespace, "windowed", "Ready", "Failed")
    assert ready["status"]["phase"] == "Ready", ready["status"]["message"]
    assert ready["status"].get("window") is None
    assert queue_url(aws_url, f"{namespace}-windowed-jobs") is not None
    gauge_becomes(metrics.INFRA_WAITING_FOR_WINDOW, namespace, "windowed", 0)


def test_suspend_starts_no_job_and_shows_it(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "paused", approval={"mode": "auto"}, suspend=True)
    suspended = wait_phase(kube_api, namespace, "paused", "Suspended")
    assert suspended["status"]["suspended"] is True and "spec.suspend is true" in suspended["status"]["message"]
    assert jobs(kube_api, namespace) == []
    patch_spec(kube_api, namespace, "paused", {"suspend": False})
    ready = wait_phase(kube_api, namespace, "paused", "Ready")
    assert ready["status"]["suspended"] is False
    # Suspended while a plan Job runs: that Job finishes and its plan is recorded; the apply does not start.
    kubelet.hold_jobs.add("paused-plan-")
    try:
        patch_spec(kube_api, namespace, "paused", {"variables": {"name": f"{namespace}-paused-2"}})
        wait_phase(kube_api, namespace, "paused", "Planning")
        patch_spec(kube_api, namespace, "paused", {"suspend": True})
    finally:
        kubelet.release("paused-plan-")
    held = wait_until(lambda: (o := get(kube_api, namespace, "paused"))["status"].get("phase") == "Suspended"
                      and o["status"]["plan"]["request"] != ready["status"]["plan"]["request"] and o, timeout=120,
                      what="the running plan recorded, the apply held")
    assert held["status"]["approval"]["state"] == "AutoApproved"
    assert [j for j in jobs(kube_api, namespace) if "-apply-" in j] == [
        f"paused-apply-{ready['status']['plan']['id'][:12]}"]  # only the first apply


def test_destroy_on_delete_works_after_the_variables_configmap_is_gone(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    core = CoreV1Api(kube_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "vars"},
                                                  "data": {"name": f"{namespace}-doomed"}})
    deployment(kube_api, namespace, "doomed", approval={"mode": "auto"}, destroyOnDelete=True, variables={},
               varsFrom=[{"kind": "ConfigMap", "name": "vars"}])
    ready = wait_phase(kube_api, namespace, "doomed", "Ready")
    assert "devops.fractary.io/destroy-on-delete" in ready["metadata"]["finalizers"]
    assert queue_url(aws_url, f"{namespace}-doomed-jobs") is not None
    core.delete_namespaced_config_map("vars", namespace)
    CustomObjectsApi(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                               "doomed")
    wait_until(lambda: gone(kube_api, namespace, "doomed"), timeout=180, what="the deployment gone")
    assert queue_url(aws_url, f"{namespace}-doomed-jobs") is None  # destroyed from the snapshot
    registry = core.read_namespaced_config_map("shop-test-registry", namespace).data["registry.json"]
    assert f"{namespace}/doomed" not in registry
    assert events(kube_api, namespace, "Destroyed")


def test_production_destroy_waits_for_its_own_approval(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "pdel", environment="prod", destroyOnDelete=True)
    waiting = wait_phase(kube_api, namespace, "pdel", "AwaitingApproval")
    approve(kube_api, namespace, "pdel", waiting["status"]["plan"]["id"])
    wait_phase(kube_api, namespace, "pdel", "Ready")
    CustomObjectsApi(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                               "pdel")
    pending = wait_until(lambda: (o := get(kube_api, namespace, "pdel"))["status"].get("phase") == "AwaitingApproval"
                         and (o["status"].get("deletion") or {}).get("planId") and o, timeout=180,
                         what="the destroy plan waiting")
    destroy_plan = pending["status"]["deletion"]["planId"]
    assert destroy_plan != waiting["status"]["plan"]["id"] and "production" in pending["status"]["message"]
    assert queue_url(aws_url, f"{namespace}-pdel-jobs") is not None  # nothing destroyed without the approval
    patch_spec(kube_api, namespace, "pdel", {"approval": {"planId": waiting["status"]["plan"]["id"],
                                                          "approvedBy": "bob"}})  # the applied plan's id
    void = wait_until(lambda: "approves nothing" in (o := get(kube_api, namespace, "pdel"))["status"]["deletion"][
        "message"] and o, timeout=60, what="the old plan id judged")
    assert void["status"]["deletion"]["state"] == "AwaitingApproval"
    assert queue_url(aws_url, f"{namespace}-pdel-jobs") is not None
    approve(kube_api, namespace, "pdel", destroy_plan)
    wait_until(lambda: gone(kube_api, namespace, "pdel"), timeout=180, what="the deployment gone")
    assert queue_url(aws_url, f"{namespace}-pdel-jobs") is None


def test_a_destroy_refused_by_aws_blocks_with_the_escape_hatch_and_abandoning_is_recorded(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "bucket", files=BUCKET_MODULE, approval={"mode": "auto"}, destroyOnDelete=True,
               retry={"maxAttempts": 0})
    wait_phase(kube_api, namespace, "bucket", "Ready")
    s3 = boto3.client("s3", endpoint_url=aws_url, region_name="us-east-1")
    bucket = f"{namespace}-bucket-assets"
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"someone's data")  # AWS refuses to delete a full bucket
    CustomObjectsApi(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                               "bucket")
    blocked = wait_until(lambda: (o := get(kube_api, namespace, "bucket"))["status"].get("phase") == "DeletionBlocked"
                         and o, timeout=180, what="the deletion blocked")
    status = blocked["status"]
    assert status["deletion"]["reason"] == "DestroyFailed" and "BucketNotEmpty" in status["deletion"]["message"]
    assert "deploy.devops.fractary.io/abandon=true" in status["message"]
    assert status["lastError"]["step"] == "destroy"
    gauge_becomes(metrics.INFRA_DELETION_BLOCKED, namespace, "bucket", 1)
    annotate(kube_api, namespace, "bucket", {"deploy.devops.fractary.io/abandon": "true",
                                             "deploy.devops.fractary.io/requested-by": "alice"})
    wait_until(lambda: gone(kube_api, namespace, "bucket"), timeout=120, what="the deployment gone")
    assert s3.head_bucket(Bucket=bucket)  # abandoned, not destroyed
    registry = CoreV1Api(kube_api).read_namespaced_config_map("shop-test-registry", namespace).data
    assert "## Abandoned" in registry["DEPLOYED.md"] and bucket in registry["DEPLOYED.md"]
    assert any("by alice" in m for m in events(kube_api, namespace, "Abandoned"))


def killed_while_holding_the_lock(api: ApiClient, kubelet: KubeletDouble, namespace: str, name: str) -> dict[str, Any]:
    """An apply SIGKILLed (every process of its pod) while it holds the state lock: nothing releases it."""
    project(api, namespace)
    kubelet.env_by_namespace[namespace] = {"DEVOPS_STANDIN_OPERATION_DELAY": "30"}
    deployment(api, namespace, name, approval={"mode": "auto"})

    def holding() -> dict[str, Any] | None:
        lock = (get(api, namespace, name).get("status") or {}).get("lock") or {}
        return lock if lock.get("operation") == "OperationTypeApply" else None

    lock = wait_until(holding, timeout=180, what="the apply holding the lock")
    assert kubelet.kill_job(namespace, lock["holderJob"])
    return lock


def test_a_lock_left_by_a_killed_runner_is_released_only_once_its_pod_is_gone(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    lock = killed_while_holding_the_lock(kube_api, kubelet, namespace, "locked")
    failed = wait_phase(kube_api, namespace, "locked", "Failed")
    assert failed["status"]["jobs"]["lastFailed"]["reason"] == "Killed"
    held = failed["status"]["lock"]
    assert held["id"] == lock["id"] and held["holderState"] == "Exited" and not held["stale"]
    # Asked while the pod exists: refused, naming the holder; the lock stays.
    annotate(kube_api, namespace, "locked", {"deploy.devops.fractary.io/release-lock": lock["id"],
                                             "deploy.devops.fractary.io/requested-by": "alice"})
    refused = wait_until(lambda: (o := get(kube_api, namespace, "locked"))["status"]["lock"].get("releaseRefused")
                         and o, timeout=60, what="the release refused")
    assert lock["holderPod"] in refused["status"]["lock"]["releaseRefused"]
    assert events(kube_api, namespace, "LockReleaseRefused")
    lease_path = (f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/lock-tfstate-default-tfstate-locked")
    assert call_json(kube_api, "GET", lease_path)["spec"].get("holderIdentity") == lock["id"]
    # The pod is gone (the Job deleted, the node drained): stale, and the pending request releases it.
    call_json(kube_api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{lock['holderPod']}")
    released = wait_until(lambda: (o := get(kube_api, namespace, "locked"))["status"].get("lockReleases") and o,
                          timeout=60, what="the lock released")
    record = released["status"]["lockReleases"][-1]
    assert (record["id"], record["how"], record["requestedBy"], record["holderPod"]) == (
        lock["id"], "annotation", "alice", lock["holderPod"])
    assert not call_json(kube_api, "GET", lease_path)["spec"].get("holderIdentity")
    assert events(kube_api, namespace, "LockReleased")
    gauge_becomes(metrics.TERRAFORM_STALE_LOCKS, namespace, "locked", 0)


def test_a_stale_lock_is_reported_and_released_automatically_only_where_the_policy_allows(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    lock = killed_while_holding_the_lock(kube_api, kubelet, namespace, "stale")
    wait_phase(kube_api, namespace, "stale", "Failed")
    call_json(kube_api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{lock['holderPod']}")
    stale = wait_until(lambda: (o := get(kube_api, namespace, "stale"))["status"]["lock"] and
                       o["status"]["lock"].get("stale") and o, timeout=60, what="the lock reported stale")
    assert condition(stale, "StaleLock")["status"] == "True"
    assert "deploy.devops.fractary.io/release-lock=" in condition(stale, "StaleLock")["message"]
    gauge_becomes(metrics.TERRAFORM_STALE_LOCKS, namespace, "stale", 1)
    # The environment's policy allows it: released without asking, recorded as such.
    project_obj = CustomObjectsApi(kube_api).get_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                          "devopsprojects", "shop")
    project_obj["spec"]["environments"][0]["autoReleaseStaleLocks"] = True
    CustomObjectsApi(kube_api).replace_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects",
                                                                "shop", project_obj)
    annotate(kube_api, namespace, "stale", {"deploy.devops.fractary.io/replan-requested-at": "after-the-lock"})
    released = wait_until(lambda: (o := get(kube_api, namespace, "stale"))["status"].get("lockReleases") and o,
                          timeout=120, what="the lock released by policy")
    assert released["status"]["lockReleases"][-1]["how"] == "auto"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _commit(work: Path, tags: str) -> str:
    (work / "main.tf").write_text(QUEUE_MODULE["main.tf"].replace('team = "payments"', tags))
    _git(work, "add", "main.tf")
    _git(work, "commit", "-q", "-m", tags)
    _git(work, "push", "-q", "origin", "HEAD:main")
    return _git(work, "rev-parse", "HEAD")


def test_a_new_commit_on_the_branch_is_found_every_interval_and_planned(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str,
    tmp_path: Path,
) -> None:
    remote, work = tmp_path / "infra.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True, capture_output=True)
    first = _commit(work, 'team = "payments"')
    project(kube_api, namespace)
    deployment(kube_api, namespace, "fromgit", approval={"mode": "auto"}, interval="30s",
               source={"git": {"url": f"file://{remote}", "ref": {"branch": "main"}}})
    ready = wait_phase(kube_api, namespace, "fromgit", "Ready")
    assert ready["status"]["lastAppliedRevision"] == first
    assert f"refs/heads/main of file://{remote} is at {first}" in condition(ready, "SourceChecked")["message"]
    second = _commit(work, 'team = "orders"')  # pushed behind the operator's back: no event tells it
    applied = wait_until(lambda: (o := get(kube_api, namespace, "fromgit"))["status"].get(
        "lastAppliedRevision") == second and o["status"].get("phase") == "Ready" and o, timeout=120,
        what="the new commit planned and applied")
    assert applied["status"]["plan"]["sourceRevision"] == second
    url = queue_url(aws_url, f"{namespace}-fromgit-jobs")
    assert sqs(aws_url).list_queue_tags(QueueUrl=url)["Tags"]["team"] == "orders"


def test_a_ready_deployment_costs_an_exact_number_of_requests_and_a_drift_check_a_few_more(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, kube_url: str, namespace: str,
    operator_config: object,
) -> None:
    """Counted on a controller of its own: looking again at a Ready deployment, and starting a drift check."""
    from devops_operator.controllers import devopsproject
    from devops_operator.controllers.infradeployment import DeploymentController
    from devops_operator.kube.client import new_api_client
    from devops_operator.runtime import Runtime

    from support import get_custom

    project(kube_api, namespace)
    deployment(kube_api, namespace, "steady", approval={"mode": "auto"})
    wait_phase(kube_api, namespace, "steady", "Ready")
    client = new_api_client(kube_url)
    runtime = Runtime.build(operator_config, client)  # type: ignore[arg-type]
    devopsproject.evaluate("shop", namespace, get_custom(kube_api, "devopsprojects", namespace, "shop")["spec"],
                           runtime)
    controller = DeploymentController(runtime)
    before = dict(client.request_counts())
    controller.reconcile(namespace, "steady")  # read it, read the lock's Lease, write status
    assert _delta(client.request_counts(), before) == {"get": 2, "patch": 1}
    kubelet.hold_jobs.add("steady-drift-")
    try:
        annotate(kube_api, namespace, "steady", {"deploy.devops.fractary.io/drift-check-requested-at": "1"})
        before = dict(client.request_counts())
        # Read it, read the plan-digest key Secret (there since the first plan), create the drift Job's Role and
        # RoleBinding (before the Job: the runner never races its permissions), create the Job, hand the Role
        # and RoleBinding to it (two patches: they go with it), post the Event, write status. The operator's own
        # controller sees the annotation too: when its Job is created first, this one's creates are refused (409,
        # still counted) and the handing over is that controller's (the one that created the Job), so two patches
        # fewer; exactly one of the two figures.
        controller.reconcile(namespace, "steady")
        assert _delta(client.request_counts(), before) in ({"get": 2, "create": 4, "patch": 3},
                                                           {"get": 2, "create": 4, "patch": 1})
    finally:
        kubelet.release("steady-drift-")


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {verb: count - before.get(verb, 0) for verb, count in after.items() if count - before.get(verb, 0)}
