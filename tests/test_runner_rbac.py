"""The rules a runner Job's Role grants (deploy/runner_rbac.py): exactly its own objects, per step (pure)."""

from __future__ import annotations

from typing import Any

from devops_operator.deploy import runner_rbac
from devops_operator.terraform.backends import BackendSettings
from devops_operator.terraform.jobs import JobSettings, build_job
from devops_operator.terraform.request import RunRequest

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
