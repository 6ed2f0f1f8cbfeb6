"""Each action on each resource type of the registry, against moto, through the running operator.

Every test also checks that each AWS call the remediation made is one of the IAM permissions the
registry lists for that action and type: docs/operations.md publishes that list as what to grant.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.api.actions import spec_of
from devops_operator.api.common import API_GROUP, API_VERSION, ResourceType
from devops_operator.aws.executors import RESTART_VARIABLE
from devops_operator.aws.metering import METER, Measurement
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import (
    aws,
    create,
    create_db,
    create_ecs_service,
    create_function,
    ready_project,
    resource_name,
)

from support import condition, get_custom, wait_for_condition

PLURAL = "remediations"


def remediation(name: str, target: dict[str, Any], action: str, *, environment: str = "test",
                verification: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"projectRef": {"name": "shop"}, "environment": environment, "target": target,
                            "action": action, "reason": "errors after the 14:00 deploy",
                            "verification": verification or {"enabled": False}}
    body.update(spec)
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Remediation", "metadata": {"name": name},
            "spec": body}


def short(namespace: str) -> str:
    return namespace.rsplit("-", 1)[-1] + "x" + str(abs(hash(namespace)) % 10_000)


def calls_made(measured: Measurement, service: str) -> dict[str, int]:
    return {op: n for (svc, op), n in measured.snapshot().calls.items() if svc == service}


def assert_within_permissions(measured: Measurement, action: str, resource_type: ResourceType) -> None:
    service = {"lambda": "lambda", "ecs-service": "ecs", "rds": "rds"}[resource_type.value]
    allowed = set(spec_of(action).permissions(resource_type))
    used = {f"{service}:{op}" for op in calls_made(measured, service)}
    assert used <= allowed, f"calls outside the registry's permissions: {sorted(used - allowed)}"


def succeeded(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = wait_for_condition(api, PLURAL, namespace, name, "Ready", timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status: {get_custom(api, PLURAL, namespace, name).get('status')}") from None
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    return obj


def log_entries(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    import json
    configmap = CoreV1Api(api).read_namespaced_config_map("shop-remediation-log", namespace)
    return list(json.loads(configmap.data["log.json"])["entries"])


def test_restart_a_lambda_function(operator: OperatorThread, kube_api: ApiClient, aws_url: str,
                                   namespace: str) -> None:
    function = resource_name("test", f"api-{short(namespace)}")
    create_function(aws_url, function, environment={"DB_HOST": "db.internal"})
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("restart", {"type": "lambda", "id": function}, "restart"))
        status = succeeded(kube_api, namespace, "restart")["status"]

    variables = aws(aws_url, "lambda").get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    assert variables == {"DB_HOST": "db.internal", RESTART_VARIABLE: status["actionResult"]["intent"]}
    assert calls_made(measured, "lambda")["UpdateFunctionConfiguration"] == 1
    assert_within_permissions(measured, "restart", ResourceType.LAMBDA)
    impact = status["impact"]
    assert impact["interruptionLevel"] == "brief" and impact["reversible"] is False
    assert impact["ownership"].startswith(f"its name {function} follows the naming pattern")
    assert "DB_HOST" not in str(status)  # configuration values never reach status
    assert status["actionResult"]["succeeded"] is True
    [entry] = log_entries(kube_api, namespace)
    assert entry["outcome"] == "Succeeded" and entry["target"] == f"lambda/{function}"
    assert entry["digest"] == impact["digest"]


def test_restart_an_ecs_service(operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str) -> None:
    cluster, service = f"c-{short(namespace)}", resource_name("test", f"web-{short(namespace)}")
    create_ecs_service(aws_url, cluster, service)
    ecs = aws(aws_url, "ecs")
    before = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"][0]["id"]
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation(
            "restart", {"type": "ecs-service", "id": service, "cluster": cluster}, "restart"))
        status = succeeded(kube_api, namespace, "restart")["status"]

    primary = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"][0]["id"]
    assert primary != before and status["actionResult"]["details"]["deploymentId"] == primary
    assert status["actionResult"]["previousState"]["primaryDeployment"] == before
    assert calls_made(measured, "ecs")["UpdateService"] == 1
    assert_within_permissions(measured, "restart", ResourceType.ECS_SERVICE)


def test_scale_an_ecs_service(operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str) -> None:
    cluster, service = f"c-{short(namespace)}", resource_name("test", f"web-{short(namespace)}")
    create_ecs_service(aws_url, cluster, service, desired=2)
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation(
            "scale", {"type": "ecs-service", "id": service, "cluster": cluster}, "scale",
            parameters={"desiredCount": 5}))
        status = succeeded(kube_api, namespace, "scale")["status"]

    running = aws(aws_url, "ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    assert running["desiredCount"] == 5
    assert status["impact"]["changes"] == [{"attribute": "desiredCount", "current": "2", "proposed": "5"}]
    assert status["impact"]["reversible"] is True and status["impact"]["interruptionLevel"] == "partial"
    assert calls_made(measured, "ecs")["UpdateService"] == 1
    assert_within_permissions(measured, "scale", ResourceType.ECS_SERVICE)


def test_scale_a_lambda_functions_reserved_concurrency(operator: OperatorThread, kube_api: ApiClient, aws_url: str,
                                                       namespace: str) -> None:
    function = resource_name("test", f"worker-{short(namespace)}")
    create_function(aws_url, function)
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation(
            "scale", {"type": "lambda", "id": function}, "scale", parameters={"reservedConcurrency": 7}))
        status = succeeded(kube_api, namespace, "scale")["status"]

    concurrency = aws(aws_url, "lambda").get_function_concurrency(FunctionName=function)
    assert concurrency["ReservedConcurrentExecutions"] == 7
    assert status["impact"]["changes"] == [
        {"attribute": "reservedConcurrency", "current": "unreserved", "proposed": "7"}]
    assert calls_made(measured, "lambda")["PutFunctionConcurrency"] == 1
    assert_within_permissions(measured, "scale", ResourceType.LAMBDA)


def test_roll_back_an_ecs_service_to_the_previous_task_definition(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    cluster, service = f"c-{short(namespace)}", resource_name("test", f"web-{short(namespace)}")
    arns = create_ecs_service(aws_url, cluster, service, revisions=3)
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation(
            "rollback", {"type": "ecs-service", "id": service, "cluster": cluster}, "rollback"))
        status = succeeded(kube_api, namespace, "rollback")["status"]

    running = aws(aws_url, "ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    assert running["taskDefinition"] == arns[1]
    assert status["impact"]["changes"] == [{"attribute": "taskDefinition", "current": arns[2], "proposed": arns[1]}]
    assert_within_permissions(measured, "rollback", ResourceType.ECS_SERVICE)


def test_roll_back_a_lambda_alias_to_the_previous_version(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    function = resource_name("test", f"api-{short(namespace)}")
    create_function(aws_url, function, versions=3, alias="live")
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation(
            "rollback", {"type": "lambda", "id": function, "alias": "live"}, "rollback"))
        status = succeeded(kube_api, namespace, "rollback")["status"]

    assert aws(aws_url, "lambda").get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "2"
    assert status["impact"]["changes"] == [{"attribute": "alias live version", "current": "3", "proposed": "2"}]
    assert calls_made(measured, "lambda")["UpdateAlias"] == 1
    assert_within_permissions(measured, "rollback", ResourceType.LAMBDA)


def test_reboot_an_rds_instance(operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str) -> None:
    db = resource_name("test", f"db-{short(namespace)}")
    create_db(aws_url, db)
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("reboot", {"type": "rds", "id": db}, "reboot"))
        status = succeeded(kube_api, namespace, "reboot")["status"]

    assert calls_made(measured, "rds")["RebootDBInstance"] == 1
    assert status["impact"]["interruptionLevel"] == "full"
    assert_within_permissions(measured, "reboot", ResourceType.RDS)


# --- bad input: a clear status naming it, and nothing acted on ---------------------------------------------------


def stalled(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj = wait_for_condition(api, PLURAL, namespace, name, "Stalled", timeout=30)
    found = condition(obj, "Stalled")
    assert found is not None
    return found


def test_a_resource_outside_the_project_is_refused(operator: OperatorThread, kube_api: ApiClient, aws_url: str,
                                                   namespace: str) -> None:
    function = f"someone-elses-{short(namespace)}"
    create_function(aws_url, function, tags={"project": "other", "environment": "test"})
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("r", {"type": "lambda", "id": function}, "restart"))
        found = stalled(kube_api, namespace, "r")

    assert found["reason"] == "OutsideProject", found
    assert found["message"].startswith(f"spec.target: lambda {function} is not a resource of DevOpsProject "
                                       f"{namespace}/shop in environment test")
    assert "names like acme-shop-core-test-<resource>" in found["message"]
    assert "not tagged project=shop, environment=test" in found["message"]
    assert "UpdateFunctionConfiguration" not in calls_made(measured, "lambda")


def test_a_resource_tagged_for_the_project_is_accepted(operator: OperatorThread, kube_api: ApiClient, aws_url: str,
                                                       namespace: str) -> None:
    function = f"legacy-name-{short(namespace)}"
    create_function(aws_url, function, tags={"project": "shop", "environment": "test"})
    ready_project(kube_api, namespace)

    create(kube_api, namespace, PLURAL, remediation("r", {"type": "lambda", "id": function}, "restart"))
    status = succeeded(kube_api, namespace, "r")["status"]
    assert status["impact"]["ownership"] == "tagged project=shop, environment=test"


def test_a_target_that_does_not_exist_is_named(operator: OperatorThread, kube_api: ApiClient,
                                              namespace: str) -> None:
    function = resource_name("test", f"gone-{short(namespace)}")
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, remediation("r", {"type": "lambda", "id": function}, "restart"))
    found = stalled(kube_api, namespace, "r")
    assert found["reason"] == "TargetNotFound"
    assert found["message"] == (f"spec.target: Lambda function {function} does not exist (region us-east-1): fix "
                                "the target, or create the resource; nothing was done")


def test_an_action_the_type_does_not_support_is_named(operator: OperatorThread, kube_api: ApiClient,
                                                      namespace: str) -> None:
    ready_project(kube_api, namespace)
    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation(
            "r", {"type": "lambda", "id": resource_name("test", "api")}, "reboot"))
        found = stalled(kube_api, namespace, "r")
    assert found["reason"] == "InvalidSpec"
    assert "action reboot does not apply to resource type lambda (only rds)" in found["message"]
    assert measured.count("lambda") == 0


@pytest.mark.parametrize(("target", "parameters", "field"), [
    ({"type": "rds"}, {"forceFailover": True}, "spec.parameters.forceFailover: DB instance"),
])
def test_a_plan_that_cannot_work_is_named(operator: OperatorThread, kube_api: ApiClient, aws_url: str,
                                          namespace: str, target: dict[str, Any], parameters: dict[str, Any],
                                          field: str) -> None:
    db = resource_name("test", f"single-{short(namespace)}")
    create_db(aws_url, db)
    ready_project(kube_api, namespace)
    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, remediation("r", {**target, "id": db}, "reboot", parameters=parameters))
        found = stalled(kube_api, namespace, "r")
    assert found["reason"] == "CannotPlan" and found["message"].startswith(field)
    assert "is not Multi-AZ" in found["message"]
    assert "RebootDBInstance" not in calls_made(measured, "rds")
