"""What the Investigation and Remediation tests share: a project, AWS resources in moto, objects."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.sandbox.aws import SANDBOX_REGION

from support import get_custom, wait_for_condition

PROJECT = "shop"
# The project's naming pattern renders acme-shop-core-<environment>-<resource>.
NAMING = "{organization}-{project}-{subsystem}-{environment}-{resource}"


def aws(aws_url: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=aws_url, region_name=SANDBOX_REGION)  # type: ignore[call-overload]


def project_manifest(name: str = PROJECT) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": name},
        "spec": {"project": "shop", "subsystem": "core", "organization": "acme", "naming": {"pattern": NAMING},
                 "environments": [{"name": "test"}, {"name": "prod", "production": True}]},
    }


def create(api: ApiClient, namespace: str, plural: str, manifest: dict[str, Any]) -> dict[str, Any]:
    result = CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural,
                                                                 manifest)
    assert isinstance(result, dict)
    return result


def ready_project(api: ApiClient, namespace: str, name: str = PROJECT) -> dict[str, Any]:
    create(api, namespace, "devopsprojects", project_manifest(name))
    return wait_for_condition(api, "devopsprojects", namespace, name, "Ready")


def patch(api: ApiClient, namespace: str, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    result = CustomObjectsApi(api).patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural, name,
                                                                body)
    assert isinstance(result, dict)
    return result


def status_of(api: ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return dict(get_custom(api, plural, namespace, name).get("status") or {})


def resource_name(environment: str, resource: str) -> str:
    return f"acme-shop-core-{environment}-{resource}"


# --- logs ------------------------------------------------------------------------------------------------


def put_logs(aws_url: str, group: str, messages: list[tuple[datetime, str]], stream: str = "s1",
             retention_days: int | None = None) -> None:
    logs = aws(aws_url, "logs")
    logs.create_log_group(logGroupName=group)
    if retention_days:
        logs.put_retention_policy(logGroupName=group, retentionInDays=retention_days)
    if not messages:
        return
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [{"timestamp": int(at.timestamp() * 1000), "message": text} for at, text in messages]
    events.sort(key=lambda e: e["timestamp"])
    for start in range(0, len(events), 5000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start:start + 5000])


def minutes_ago(minutes: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(minutes=minutes)


def put_metric(aws_url: str, namespace: str, name: str, dimensions: dict[str, str],
               points: list[tuple[datetime, float]]) -> None:
    cloudwatch = aws(aws_url, "cloudwatch")
    data = [{"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
             "Timestamp": at, "Value": value} for at, value in points]
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 20])


# --- resources ---------------------------------------------------------------------------------------------


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def lambda_role(aws_url: str) -> str:
    iam = aws(aws_url, "iam")
    try:
        return str(iam.get_role(RoleName="ops-tests-lambda")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName="ops-tests-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def create_function(aws_url: str, name: str, *, tags: dict[str, str] | None = None, versions: int = 0,
                    alias: str | None = None, environment: dict[str, str] | None = None) -> None:
    """A Lambda function in moto (never invoked); `versions` published versions, the alias on the last."""
    client = aws(aws_url, "lambda")
    client.create_function(FunctionName=name, Runtime="python3.12", Role=lambda_role(aws_url),
                           Handler="index.handler", Code={"ZipFile": _zip()}, Tags=tags or {},
                           Environment={"Variables": environment or {}})
    version = None
    for number in range(versions):
        # Publishing an unchanged function returns the version it already has: change it each time.
        client.update_function_configuration(FunctionName=name, Description=f"release {number + 1}")
        version = client.publish_version(FunctionName=name)["Version"]
    if alias and version:
        client.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)


def create_ecs_service(aws_url: str, cluster: str, service: str, *, revisions: int = 2, desired: int = 2,
                       tags: dict[str, str] | None = None) -> list[str]:
    """A cluster and a service running the last of `revisions` task definition revisions."""
    ecs = aws(aws_url, "ecs")
    ecs.create_cluster(clusterName=cluster)
    arns = [ecs.register_task_definition(family=service, containerDefinitions=[
        {"name": "web", "image": f"nginx:1.{n}", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
        for n in range(revisions)]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=arns[-1], desiredCount=desired,
                       tags=[{"key": k, "value": v} for k, v in (tags or {}).items()])
    return arns


def create_db(aws_url: str, identifier: str, *, multi_az: bool = False) -> None:
    aws(aws_url, "rds").create_db_instance(
        DBInstanceIdentifier=identifier, DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="app",
        MasterUserPassword="not-a-real-password-1", AllocatedStorage=20, MultiAZ=multi_az)
