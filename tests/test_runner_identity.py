"""Runner isolation (issue 14, items 1-4): what runs and as whom is the project owner's, and every plan id binds it.

Each attack is reproduced first: production keys through spec.runner.env, a deployment choosing its image or
ServiceAccount, an image changed while a production plan waits for approval, plans holding the deploy identity,
and a runner acting in another account than the environment's.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.api.infradeployment import EnvVar, RunnerOverrides
from devops_operator.deploy import runner_policy
from devops_operator.runner.main import Runner, StepFailed, keeps_aws_name
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.identity import inputs_digest
from devops_operator.terraform.jobs import JobSettings, build_job
from devops_operator.terraform.request import RunRequest

from deployments import approve, deployment, get, jobs, project, wait_phase
from support import wait_until

PROJECT = DevOpsProjectSpec.model_validate({"environments": [
    {"name": "test", "credentials": {"source": "ambient"}, "runner": {"allowedSecrets": ["tf-*"]}},
    {"name": "prod", "production": True,
     "credentials": {"source": "secret", "secretRef": {"name": "prod-aws"}}},
]})


# -- pure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["AWS_ACCESS_KEY_ID", "aws_secret_access_key", "DEVOPS_ASSUME_ROLE_ARN",
                                  "TF_INPUT", "TF_CLI_ARGS_apply", "KUBERNETES_SERVICE_HOST", "HOME", "PATH",
                                  "PYTHONPATH", "LD_PRELOAD", "KUBE_CONFIG_PATH"])
def test_reserved_runner_env_names_are_refused_naming_the_entry(name: str) -> None:
    entries = [EnvVar(name="TF_LOG", value="DEBUG"), EnvVar(name="OK", value="1"), EnvVar(name=name, value="x")]
    refused = runner_policy.env_refusals(entries, PROJECT.environments[0], "ns/shop", "spec.environments[0]", set())
    assert [(r.reason, r.field) for r in refused] == [("ReservedRunnerEnv", "spec.runner.env[2].name")]


def test_runner_env_secrets_only_from_the_environments_allow_list_and_never_credentials() -> None:
    def ref(secret: str) -> EnvVar:
        return EnvVar.model_validate({"name": "TOKEN", "secretKeyRef": {"name": secret, "key": "k"}})

    forbidden = runner_policy.credential_secrets(PROJECT)
    assert forbidden == {"prod-aws"}
    test_env = PROJECT.environments[0]
    assert runner_policy.env_refusals([ref("tf-token")], test_env, "ns/shop", "e", forbidden) == []
    other = runner_policy.env_refusals([ref("payments-db")], test_env, "ns/shop", "e", forbidden)
    assert other[0].reason == "RunnerSecretNotAllowed" and "allowedSecrets: tf-*" in other[0].message
    keys = runner_policy.env_refusals([ref("prod-aws")], test_env, "ns/shop", "e", forbidden)
    assert keys[0].field == "spec.runner.env[0].secretKeyRef.name" and "AWS keys" in keys[0].message


def test_a_deployment_may_not_choose_its_image_or_service_account() -> None:
    refused = runner_policy.override_refusals(RunnerOverrides(image="evil:1", service_account_name="admin"),
                                              "ns/shop", "spec.environments[1]")
    assert [r.field for r in refused] == ["spec.runner.image", "spec.runner.serviceAccountName"]
    assert "spec.environments[1].runner.image" in refused[0].message


def test_plans_get_the_plan_identity_and_production_without_one_plans_nothing() -> None:
    test = runner_policy.runner_choice(PROJECT, PROJECT.environments[0], "ns/shop", "spec.environments[0]")
    assert isinstance(test, runner_policy.RunnerChoice)
    assert test.for_step("plan").origin.startswith("credentials (fallback")  # visible fallback outside prod
    prod = runner_policy.runner_choice(PROJECT, PROJECT.environments[1], "ns/shop", "spec.environments[1]")
    assert isinstance(prod, runner_policy.Refusal) and prod.reason == "PlanIdentityMissing"
    with_plan = PROJECT.model_copy(deep=True)
    with_plan.environments[1].runner.plan_credentials = with_plan.environments[0].credentials
    choice = runner_policy.runner_choice(with_plan, with_plan.environments[1], "ns/shop", "spec.environments[1]")
    assert isinstance(choice, runner_policy.RunnerChoice)
    for step in ("plan", "drift", "destroy"):
        assert choice.for_step(step).service_account == "devops-operator-runner-plan"
        assert choice.for_step(step).origin == "runner.planCredentials"
    assert choice.for_step("apply").service_account == "devops-operator-runner"
    assert choice.for_step("apply").credentials.source == "secret"


def test_image_service_account_identity_and_resources_are_bound_into_the_inputs_digest() -> None:
    runner = {"image": "a:1", "resources": {"cpu": "1"}, "apply": {"serviceAccount": "r", "identity": {"rv": "1"}}}
    base = inputs_digest(variables={}, runner=runner)
    for changed in ({**runner, "image": "a:2"}, {**runner, "resources": {"cpu": "2"}},
                    {**runner, "apply": {"serviceAccount": "admin", "identity": {"rv": "1"}}},
                    {**runner, "apply": {"serviceAccount": "r", "identity": {"rv": "2"}}}):
        assert inputs_digest(variables={}, runner=changed) != base


def test_the_operators_env_entries_come_after_the_tenants() -> None:
    request = RunRequest(step="plan", deployment="d", namespace="ns", owner={"apiVersion": "v1", "kind": "X",
                         "metadata": {"name": "d", "uid": "u"}}, source={}, module_path=".", engine="terraform",
                         engine_version=None, backend_override={}, variables={})
    settings = JobSettings(image="i", service_account="sa", cpu="1", memory="1Gi", ephemeral_storage=None,
                           active_deadline_seconds=60, backoff_limit=0,
                           env=[{"name": "AWS_ACCESS_KEY_ID", "value": "operator"}],
                           tenant_env=[{"name": "AWS_ACCESS_KEY_ID", "value": "tenant"}])
    env = build_job("d-plan-1", request, settings, request.owner)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "AWS_ACCESS_KEY_ID"] == ["tenant", "operator"]  # last wins


def test_the_engine_inherits_only_the_aws_settings_of_its_source() -> None:
    assert keeps_aws_name("AWS_REGION", "secret") and keeps_aws_name("TF_LOG", "secret")
    assert not keeps_aws_name("AWS_PROFILE", "ambient") and not keeps_aws_name("AWS_CONFIG_FILE", "secret")
    assert not keeps_aws_name("AWS_ROLE_ARN", "secret") and not keeps_aws_name("AWS_ACCESS_KEY_ID", "irsa")


# -- the runner against moto: IRSA with roleArn, and the account check ----------------------------------------


def _runner(tmp_path: Path, env: dict[str, str]) -> Runner:
    request = RunRequest(step="plan", deployment="d", namespace="ns", owner={}, source={}, module_path=".",
                         engine="terraform", engine_version=None, backend_override={}, variables={})
    return Runner(request, None, tmp_path, env)  # type: ignore[arg-type]  # no Kubernetes call is made here


def test_irsa_with_a_role_arn_assumes_the_role_from_the_web_identity(aws_url: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJ.a.web-identity-token")
    runner = _runner(tmp_path, {
        "AWS_ENDPOINT_URL": aws_url, "AWS_REGION": "us-east-1", "DEVOPS_CREDENTIALS_SOURCE": "irsa",
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/runner-sa", "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "DEVOPS_ASSUME_ROLE_ARN": "arn:aws:iam::123456789012:role/shop-prod-deploy",
        "DEVOPS_EXPECTED_ACCOUNT_ID": "123456789012", "AWS_PROFILE": "tenant"})
    runner.check_account()
    env = runner.engine_env()
    assert "AWS_ROLE_ARN" not in env and "AWS_WEB_IDENTITY_TOKEN_FILE" not in env and "AWS_PROFILE" not in env
    who = boto3.client("sts", endpoint_url=aws_url, region_name="us-east-1",
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=env["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert "assumed-role/shop-prod-deploy" in who["Arn"]


def test_an_identity_in_another_account_fails_the_step_before_the_engine_starts(aws_url: str,
                                                                                tmp_path: Path) -> None:
    runner = _runner(tmp_path, {
        "AWS_ENDPOINT_URL": aws_url, "AWS_REGION": "us-east-1", "DEVOPS_CREDENTIALS_SOURCE": "secret",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "DEVOPS_ASSUME_ROLE_ARN": "arn:aws:iam::210987654321:role/elsewhere",
        "DEVOPS_EXPECTED_ACCOUNT_ID": "111122223333"})
    with pytest.raises(StepFailed) as failed:
        runner.prepare()
    assert failed.value.category == "credentials"
    assert "not the environment's accountId 111122223333" in str(failed.value)
    assert runner.engine is None  # the engine was never chosen, let alone started


# -- end to end: the operator, the kubelet double, the stand-in and moto -------------------------------------



def _secret(api: ApiClient, namespace: str, name: str) -> None:
    CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": {
        "aws_access_key_id": base64.b64encode(b"prod-key").decode(),
        "aws_secret_access_key": base64.b64encode(b"prod-secret").decode()}})


def _events(api: ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    items = CoreV1Api(api).list_namespaced_event(namespace).items
    return [{"reason": e.reason, "message": e.message} for e in items if e.involved_object.name == name]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_production_keys_through_runner_env_are_refused_before_any_job(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    _secret(kube_api, namespace, "shop-prod-aws")
    project(kube_api, namespace, prod_runner={"planCredentials": {"source": "ambient"}})
    deployment(kube_api, namespace, "steal", runner={"env": [
        {"name": "TF_LOG", "value": "INFO"},
        {"name": "MY_SETTING", "value": "1"},
        {"name": "AWS_ACCESS_KEY_ID", "secretKeyRef": {"name": "shop-prod-aws", "key": "aws_access_key_id"}}]})
    status = wait_phase(kube_api, namespace, "steal", "Stalled")["status"]
    assert status["message"].startswith("spec.runner.env[2].name: AWS_ACCESS_KEY_ID is a name the runner sets")
    assert {c["reason"] for c in status["conditions"] if c["type"] == "Stalled"} == {"ReservedRunnerEnv"}
    assert jobs(kube_api, namespace) == []
    wait_until(lambda: any("spec.runner.env[2].name" in (e["message"] or "") for e in
                           _events(kube_api, namespace, "steal")), what="an Event naming the entry")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_deployment_choosing_its_image_is_stalled_naming_where_the_owner_sets_it(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "img", runner={"serviceAccountName": "namespace-admin"})
    status = wait_phase(kube_api, namespace, "img", "Stalled")["status"]
    assert status["message"].startswith("spec.runner.serviceAccountName: a deployment may not choose")
    assert "spec.environments[0].runner.serviceAccountName" in status["message"]
    assert jobs(kube_api, namespace) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_changing_the_runner_while_a_production_plan_waits_voids_its_approval(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    from kubernetes.client import CustomObjectsApi

    from devops_operator.api.common import API_GROUP, API_VERSION
    project(kube_api, namespace)
    deployment(kube_api, namespace, "prodq", environment="prod")
    waiting = wait_phase(kube_api, namespace, "prodq", "AwaitingApproval")["status"]
    old = waiting["plan"]["id"]
    plan_jobs = jobs(kube_api, namespace)
    job = next(j for j in kubelet.started_jobs if j in plan_jobs)
    assert job.startswith("prodq-plan-")
    # The project owner's environment: the attacker cannot write it, but an image change must still re-plan.
    body = CustomObjectsApi(kube_api).get_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                   "devopsprojects", "shop")
    body["spec"]["environments"][1]["runner"]["image"] = "ghcr.io/fractary/devops-operator:other"
    CustomObjectsApi(kube_api).replace_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects",
                                                                "shop", body)
    replanned = wait_until(lambda: (s := get(kube_api, namespace, "prodq").get("status") or {}).get(
        "phase") == "AwaitingApproval" and s.get("plan", {}).get("id") not in (None, old) and s,
        timeout=120, what="a new plan for the new image")
    approve(kube_api, namespace, "prodq", old)
    void = wait_until(lambda: (s := get(kube_api, namespace, "prodq").get("status") or {}).get(
        "approval", {}).get("state") == "Void" and s, what="the old plan id approves nothing")
    assert "approves nothing" in void["message"]
    assert [j for j in jobs(kube_api, namespace) if "-apply-" in j] == []
    assert replanned["plan"]["id"] != old


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_plan_jobs_run_as_the_plan_identity_and_apply_jobs_as_the_deploy_identity(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    from devops_operator.kube.client import call_json
    _secret(kube_api, namespace, "shop-prod-plan")
    project(kube_api, namespace, prod_runner={"planServiceAccountName": "shop-plan", "planCredentials": {
        "source": "secret", "secretRef": {"name": "shop-prod-plan"}}})
    deployment(kube_api, namespace, "ids", environment="prod")
    wait_phase(kube_api, namespace, "ids", "AwaitingApproval", "Failed")
    listing = call_json(kube_api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    pod = listing[0]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert pod["serviceAccountName"] == "shop-plan"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "shop-prod-plan"
    assert env["DEVOPS_CREDENTIALS_SOURCE"]["value"] == "secret"


def _edit_prod_environment(api: ApiClient, namespace: str, change: Any) -> None:
    """The project owner edits the production environment (as `kubectl edit devopsproject shop` would)."""
    from kubernetes.client import CustomObjectsApi

    from devops_operator.api.common import API_GROUP, API_VERSION
    objects = CustomObjectsApi(api)
    body = objects.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", "shop")
    change(body["spec"]["environments"][1])
    objects.replace_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", "shop", body)


def _queue_exists(aws_url: str, name: str) -> bool:
    sqs = boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")
    return name in [url.rsplit("/", 1)[-1] for url in sqs.list_queues().get("QueueUrls", [])]


def _job_pod(api: ApiClient, namespace: str, job: str) -> dict[str, Any]:
    from devops_operator.kube.client import call_json
    return dict(call_json(api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}")["spec"]["template"][
        "spec"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_changing_the_runner_while_a_production_destroy_waits_makes_a_new_destroy_plan(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    """A destroy plan binds what runs it and as whom, as any plan does: the image, the apply and plan
    ServiceAccounts, the plan identity and the deploy identity each make a new destroy plan id, and an
    approval of the old id destroys nothing."""
    from kubernetes.client import CustomObjectsApi

    from devops_operator.api.common import API_GROUP, API_VERSION
    _secret(kube_api, namespace, "shop-prod-plan")
    _secret(kube_api, namespace, "shop-prod-deploy")
    project(kube_api, namespace)
    deployment(kube_api, namespace, "pdr", environment="prod", destroyOnDelete=True)
    approve(kube_api, namespace, "pdr", wait_phase(kube_api, namespace, "pdr", "AwaitingApproval")["status"]["plan"][
        "id"])
    wait_phase(kube_api, namespace, "pdr", "Ready")
    queue = f"{namespace}-pdr-jobs"
    assert _queue_exists(aws_url, queue)
    applies_before = [j for j in jobs(kube_api, namespace) if "-apply-" in j]
    kubelet.hold_jobs.add("pdr-apply-")  # the destroy's apply Job is looked at before it runs
    CustomObjectsApi(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                               "infradeployments", "pdr")

    def destroy_waiting(seen: list[str]) -> str:
        def check() -> str | None:
            deletion = (get(kube_api, namespace, "pdr").get("status") or {}).get("deletion") or {}
            planned = deletion.get("planId")
            ready = deletion.get("state") == "AwaitingApproval" and planned and planned not in seen
            return str(planned) if ready else None
        return wait_until(check, timeout=180, interval=0.2, what=f"a destroy plan other than {seen}")

    seen = [destroy_waiting([])]
    changes = {
        "image": lambda env: env["runner"].update(image="ghcr.io/fractary/devops-operator:other"),
        "apply ServiceAccount": lambda env: env["runner"].update(serviceAccountName="shop-deploy"),
        "plan ServiceAccount": lambda env: env["runner"].update(planServiceAccountName="shop-plan"),
        "plan identity": lambda env: env["runner"].update(planCredentials={
            "source": "secret", "secretRef": {"name": "shop-prod-plan"}}),
        "deploy identity": lambda env: env.update(credentials={
            "source": "secret", "secretRef": {"name": "shop-prod-deploy"}}),
    }
    for what, change in changes.items():
        _edit_prod_environment(kube_api, namespace, change)
        seen.append(destroy_waiting(seen))
        approve(kube_api, namespace, "pdr", seen[-2], who="bob")  # the destroy plan reviewed before the change
        judged = wait_until(lambda: (d := (get(kube_api, namespace, "pdr").get("status") or {}).get(
            "deletion") or {}).get("planId") == seen[-1] and "approves nothing" in d.get("message", "") and d,
            timeout=60, what=f"the destroy plan before the {what} change judged")
        assert judged["state"] == "AwaitingApproval", what
        assert [j for j in jobs(kube_api, namespace) if "-apply-" in j] == applies_before, what
        assert _queue_exists(aws_url, queue), what
    assert len(set(seen)) == len(changes) + 1
    newest = sorted((j for j in jobs(kube_api, namespace) if "-destroy-" in j),
                    key=lambda j: kubelet.started_jobs.index(j))[-1]
    plan_pod = _job_pod(kube_api, namespace, newest)  # the destroy plan waiting ran with the settings now
    assert plan_pod["serviceAccountName"] == "shop-plan"
    assert plan_pod["containers"][0]["image"] == "ghcr.io/fractary/devops-operator:other"
    plan_env = {e["name"]: e for e in plan_pod["containers"][0]["env"]}
    assert plan_env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "shop-prod-plan"

    approve(kube_api, namespace, "pdr", seen[-1], who="bob")
    apply_job = wait_until(lambda: next((j for j in jobs(kube_api, namespace) if "-apply-" in j
                                         and j not in applies_before), None), timeout=60, what="the destroy's apply")
    apply_pod = _job_pod(kube_api, namespace, apply_job)
    assert apply_pod["serviceAccountName"] == "shop-deploy"
    apply_env = {e["name"]: e for e in apply_pod["containers"][0]["env"]}
    assert apply_env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "shop-prod-deploy"
    kubelet.release("pdr-apply-")
    wait_until(lambda: not _queue_exists(aws_url, queue), timeout=180, what="the queue destroyed")
