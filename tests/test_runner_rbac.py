"""The rules a runner Job's Role grants (deploy/runner_rbac.py): exactly its own objects, per step (pure), and
the Roles the operator creates for its Jobs (end to end)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from devops_operator.deploy import runner_rbac
from devops_operator.kube.client import call_json
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.backends import BackendSettings
from devops_operator.terraform.jobs import JobSettings, build_job
from devops_operator.terraform.request import RunRequest

from deployments import approve, deployment, project, wait_phase
from support import wait_until

NS = "team-a"
JOB = "web-plan-0123456789ab"
OWNER = {"apiVersion": "deploy.devops.fractary.io/v1alpha1", "kind": "InfraDeployment",
         "metadata": {"name": "web", "namespace": NS, "uid": "u-1"}}


def request(step: str = "plan", *, state_namespace: str | None = NS, **changes: Any) -> RunRequest:
    backend = (BackendSettings(type="s3", bucket="b", key="k", region="eu-west-1") if state_namespace is None
               else BackendSettings(type="kubernetes", namespace=state_namespace, secret_suffix="devops-web"))
    base = RunRequest(
        step=step, deployment="web", namespace=NS, owner=OWNER,
        source={"git": {"url": "https://git.example/m.git", "credentialsSecretRef": {"name": "git-creds"}}},
        module_path=".", engine="terraform", engine_version=None, backend_override=backend.override(),
        variables={}, vars_from=[{"kind": "ConfigMap", "name": "vars-cm", "keys": [], "optional": False},
                                 {"kind": "Secret", "name": "vars-secret", "keys": ["token"], "optional": True}],
        artifact_secret="web-plan", outputs_config_map="web-outputs", outputs_secret=None,
        inputs_snapshot_secret="web-inputs",
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def named(resource: str, verbs: list[str], names: list[str], group: str = "") -> dict[str, Any]:
    return {"apiGroups": [group], "resources": [resource], "verbs": verbs, "resourceNames": names}


def create(resource: str, group: str = "") -> dict[str, Any]:
    return {"apiGroups": [group], "resources": [resource], "verbs": ["create"]}


WRITE = ["get", "update", "patch"]
STATE_SECRET = "tfstate-default-devops-web"
LOCK = "lock-tfstate-default-devops-web"
LEASE_RULES = [named("leases", WRITE, [LOCK], "coordination.k8s.io"), create("leases", "coordination.k8s.io")]


def test_a_plan_reads_its_source_and_variables_and_writes_only_its_result_and_state() -> None:
    rules = runner_rbac.runner_rules(request("plan"), JOB)
    assert rules.state_namespace is None
    assert rules.rules == [
        named("configmaps", ["get"], ["vars-cm"]),
        named("secrets", ["get"], ["git-creds", "vars-secret"]),
        named("secrets", WRITE, [STATE_SECRET, f"{JOB}-result"]),
        LEASE_RULES[0],
        create("secrets"),  # the plan artefact: its name holds the plan id, unknown before the plan
        LEASE_RULES[1],
    ]


def test_a_drift_check_needs_what_a_plan_needs() -> None:
    job = "web-drift-0123456789ab"
    assert runner_rbac.runner_rules(request("drift"), job).rules == runner_rbac.runner_rules(
        request("plan"), job).rules


def test_an_apply_reads_the_approved_artefact_chunks_by_name_and_writes_outputs_snapshot_and_errored_state() -> None:
    job = "web-apply-fedcba987654"
    approved = request("apply", plan_id="p1", plan_sha256="s", artifact_secret="web-plan-p1",
                       outputs_secret="web-outputs-sensitive")
    rules = runner_rbac.runner_rules(approved, job, artifact_chunks=3).rules
    assert rules == [
        named("configmaps", ["get"], ["vars-cm"]),
        named("configmaps", WRITE, ["web-outputs"]),
        named("secrets", ["get"], ["git-creds", "vars-secret", "web-plan-p1", "web-plan-p1-1", "web-plan-p1-2"]),
        named("secrets", WRITE, [STATE_SECRET, f"{job}-result", "web-errored-tfstate", "web-inputs",
                                 "web-outputs-sensitive"]),
        LEASE_RULES[0],
        create("configmaps"),
        create("secrets"),
        LEASE_RULES[1],
    ]


def test_a_destroy_plan_reads_the_snapshot_not_the_variables() -> None:
    job = "web-destroy-0123456789ab"
    rules = runner_rbac.runner_rules(request("destroy", from_snapshot=True), job).rules
    assert rules == [
        named("secrets", ["get"], ["git-creds", "web-inputs"]),  # a source too large to snapshot is fetched again
        named("secrets", WRITE, [STATE_SECRET, f"{job}-result"]),
        LEASE_RULES[0],
        create("secrets"),
        LEASE_RULES[1],
    ]


def test_applying_a_destroy_plan_keeps_the_snapshot_read_only() -> None:
    job = "web-apply-aaaaaaaaaaaa"
    applied = request("apply", from_snapshot=True, plan_id="d1", plan_sha256="s", artifact_secret="web-plan-d1")
    rules = runner_rbac.runner_rules(applied, job).rules
    assert named("secrets", ["get"], ["git-creds", "web-inputs", "web-plan-d1"]) in rules
    assert named("secrets", WRITE, [STATE_SECRET, f"{job}-result", "web-errored-tfstate"]) in rules
    assert not any("vars-cm" in rule.get("resourceNames", []) for rule in rules)


def test_a_shared_state_namespace_gets_the_state_rules_and_the_job_namespace_none_of_them() -> None:
    rules = runner_rbac.runner_rules(request("plan", state_namespace="tfstate"), JOB)
    assert rules.state_namespace == "tfstate"
    assert rules.rules == [
        named("configmaps", ["get"], ["vars-cm"]),
        named("secrets", ["get"], ["git-creds", "vars-secret"]),
        named("secrets", WRITE, [f"{JOB}-result"]),
        create("secrets"),
    ]
    assert rules.state_rules == [named("secrets", WRITE, [STATE_SECRET]), LEASE_RULES[0], create("secrets"),
                                 LEASE_RULES[1]]
    role, binding = runner_rbac.state_objects(request("plan", state_namespace="tfstate"), ["plan-sa", "apply-sa"])
    assert (role["metadata"]["namespace"], role["metadata"]["name"]) == ("tfstate", "devops-runner-devops-web")
    assert role["rules"] == rules.state_rules
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "apply-sa", "namespace": NS},
                                   {"kind": "ServiceAccount", "name": "plan-sa", "namespace": NS}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "devops-runner-devops-web"}


def test_an_s3_backend_needs_no_state_objects_in_kubernetes() -> None:
    rules = runner_rbac.runner_rules(request("plan", state_namespace=None), JOB)
    assert rules.state_namespace is None
    assert not any(rule["resources"] == ["leases"] for rule in rules.rules)
    assert named("secrets", WRITE, [f"{JOB}-result"]) in rules.rules
    assert runner_rbac.state_objects(request("plan", state_namespace=None), ["sa"]) == []


def test_no_rule_lists_watches_or_reads_without_a_name() -> None:
    for step, extra in (("plan", {}), ("drift", {}), ("destroy", {"from_snapshot": True}),
                        ("apply", {"plan_id": "p", "artifact_secret": "web-plan-p"})):
        found = runner_rbac.runner_rules(request(step, **extra), JOB)
        for rule in [*found.rules, *(found.state_rules or [])]:
            assert not {"list", "watch", "delete", "deletecollection", "*"} & set(rule["verbs"])
            assert "resourceNames" in rule or rule["verbs"] == ["create"]


def test_the_binding_names_the_jobs_service_account_and_the_pod_mounts_its_token_explicitly() -> None:
    role, binding = runner_rbac.job_objects(request("plan"), JOB, "runner-prod")
    assert (role["kind"], role["metadata"]["name"], role["metadata"]["namespace"]) == ("Role", f"{JOB}-runner", NS)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "runner-prod", "namespace": NS}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert role["metadata"]["labels"]["devops.fractary.io/runner-job"] == JOB
    settings = JobSettings(image="i", service_account="runner-prod", cpu="1", memory="1Gi", ephemeral_storage=None,
                           active_deadline_seconds=60, backoff_limit=0, env=[])
    pod = build_job(JOB, request("plan"), settings, OWNER)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True


# -- end to end: the operator, the kubelet double, the stand-in and moto ------------------------------------


def _rbac(api: ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = call_json(api, "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/"
                                                      f"{plural}/{name}")
        return found
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _job(api: ApiClient, namespace: str, prefix: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        items = call_json(api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
        return next((j for j in items if j["metadata"]["name"].startswith(prefix)), None)
    job: dict[str, Any] = wait_until(found, timeout=60, what=f"a Job {prefix}*")
    return job


def _granted(api: ApiClient, namespace: str, job: dict[str, Any], service_account: str) -> list[dict[str, Any]]:
    """The Job's Role and RoleBinding as the API holds them: owned by the Job alone, binding its ServiceAccount."""
    name = f"{job['metadata']['name']}-runner"
    role = wait_until(lambda: (r := _rbac(api, namespace, "roles", name)) and r["metadata"].get(
        "ownerReferences", [{}])[0].get("kind") == "Job" and r, timeout=30, what=f"Role {name} handed to its Job")
    binding = wait_until(lambda: (b := _rbac(api, namespace, "rolebindings", name)) and b["metadata"].get(
        "ownerReferences", [{}])[0].get("kind") == "Job" and b, timeout=30, what=f"RoleBinding {name}")
    for obj in (role, binding):
        assert [(o["kind"], o["name"], o["uid"]) for o in obj["metadata"]["ownerReferences"]] == [
            ("Job", job["metadata"]["name"], job["metadata"]["uid"])]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == service_account
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    rules: list[dict[str, Any]] = role["rules"]
    return rules


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_plan_and_apply_jobs_get_roles_naming_exactly_their_objects_and_lose_them_with_the_job(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    """What is checked is what is granted: the emulated API server does not enforce RBAC, so the Roles'
    rules are asserted as the API holds them (and the runner, doing its work, shows it needs no more only
    in a real cluster). Their lifetime is the emulator's garbage collector's: gone with their Job."""
    CoreV1Api(kube_api).create_namespaced_config_map(namespace, {"metadata": {"name": "rbac-vars"},
                                                                 "data": {"team": '"orders"'}})
    project(kube_api, namespace, prod_runner={"planServiceAccountName": "shop-plan",
                                              "planCredentials": {"source": "ambient"}})
    kubelet.hold_jobs.add("rbac-plan-")
    try:
        deployment(kube_api, namespace, "rbac", environment="prod", varsFrom=[{"kind": "ConfigMap",
                                                                               "name": "rbac-vars"}],
                   variables={"name": f"{namespace}-rbac"[:60]})
        plan_job = _job(kube_api, namespace, "rbac-plan-")
        plan_name = plan_job["metadata"]["name"]
        assert _granted(kube_api, namespace, plan_job, "shop-plan") == [
            named("configmaps", ["get"], ["rbac-vars"]),
            named("secrets", WRITE, [f"{plan_name}-result", "tfstate-default-tfstate-rbac"]),
            named("leases", WRITE, ["lock-tfstate-default-tfstate-rbac"], "coordination.k8s.io"),
            create("secrets"),
            create("leases", "coordination.k8s.io"),
        ]
    finally:
        kubelet.release("rbac-plan-")
    waiting = wait_phase(kube_api, namespace, "rbac", "AwaitingApproval", "Failed")["status"]
    assert waiting["phase"] == "AwaitingApproval", waiting["message"]
    plan = waiting["plan"]
    kubelet.hold_jobs.add("rbac-apply-")
    try:
        approve(kube_api, namespace, "rbac", plan["id"])
        apply_job = _job(kube_api, namespace, "rbac-apply-")
        apply_name = apply_job["metadata"]["name"]
        artefacts = [plan["artifactSecret"]] + [f"{plan['artifactSecret']}-{i}"
                                                for i in range(1, int(plan.get("artifactChunks") or 1))]
        assert _granted(kube_api, namespace, apply_job, "devops-operator-runner") == [
            named("configmaps", ["get"], ["rbac-vars"]),
            named("configmaps", WRITE, ["rbac-outputs"]),
            named("secrets", ["get"], sorted(artefacts)),
            named("secrets", WRITE, sorted([f"{apply_name}-result", "rbac-errored-tfstate", "rbac-inputs",
                                            "tfstate-default-tfstate-rbac"])),
            named("leases", WRITE, ["lock-tfstate-default-tfstate-rbac"], "coordination.k8s.io"),
            create("configmaps"),
            create("secrets"),
            create("leases", "coordination.k8s.io"),
        ]
    finally:
        kubelet.release("rbac-apply-")
    ready = wait_phase(kube_api, namespace, "rbac", "Ready", "Failed")["status"]
    assert ready["phase"] == "Ready", ready["message"]
    for job in (plan_name, apply_name):
        call_json(kube_api, "DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}",
                  body={"propagationPolicy": "Background"})
        wait_until(lambda job=job: _rbac(kube_api, namespace, "roles", f"{job}-runner") is None and _rbac(  # type: ignore[misc]
            kube_api, namespace, "rolebindings", f"{job}-runner") is None, timeout=30,
            what=f"the Role and RoleBinding of {job} collected with it")


def test_per_job_roles_are_on_unless_the_operator_is_told_otherwise() -> None:
    from devops_operator.config import OperatorConfig

    assert OperatorConfig.from_env({}).runner_rbac is True
    assert OperatorConfig.from_env({"DEVOPS_OPERATOR_RUNNER_RBAC": "false"}).runner_rbac is False
    assert OperatorConfig.from_env({"DEVOPS_OPERATOR_RUNNER_RBAC": "true"}).runner_rbac is True


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_shared_state_namespace_gets_the_deployments_state_role_until_the_deployment_goes(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    """What is granted, not enforced (the emulated API server does not enforce RBAC): the state Role names only
    this deployment's state Secret and lock Lease, and is removed with the deployment (owners never cross
    namespaces, so the operator deletes it: here a deployment without destroyOnDelete, seen only
    by its DELETED event)."""
    from kubernetes.client import CustomObjectsApi

    from devops_operator.api.common import API_GROUP, API_VERSION

    project(kube_api, namespace)
    deployment(kube_api, namespace, "shared", backend={"type": "kubernetes", "kubernetes": {"namespace": "rbac-state"}},
               approval={"mode": "auto"})
    ready = wait_phase(kube_api, namespace, "shared", "Ready", "Failed")["status"]
    assert ready["phase"] == "Ready", ready["message"]
    suffix = f"tfstate.{namespace}.shared"
    name = f"devops-runner-{suffix}"
    role, binding = _rbac(kube_api, "rbac-state", "roles", name), _rbac(kube_api, "rbac-state", "rolebindings", name)
    assert role is not None and binding is not None
    assert role["rules"] == [named("secrets", WRITE, [f"tfstate-default-{suffix}"]),
                             named("leases", WRITE, [f"lock-tfstate-default-{suffix}"], "coordination.k8s.io"),
                             create("secrets"), create("leases", "coordination.k8s.io")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "devops-operator-runner", "namespace": namespace}]
    job = next(j for j in call_json(kube_api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
               if "-apply-" in j["metadata"]["name"])
    own = _rbac(kube_api, namespace, "roles", f"{job['metadata']['name']}-runner")
    assert own is not None  # the state is not in the deployment's namespace: its Role names neither state nor lock
    names = [n for rule in own["rules"] for n in rule.get("resourceNames", [])]
    assert not [n for n in names if n.startswith(("tfstate-", "lock-"))]
    assert not any(rule["resources"] == ["leases"] for rule in own["rules"])
    CustomObjectsApi(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                               "shared")
    wait_until(lambda: _rbac(kube_api, "rbac-state", "roles", name) is None and _rbac(
        kube_api, "rbac-state", "rolebindings", name) is None, timeout=120, what="the state Role deleted")
