"""A read-only view of what the project's InfraDeployments report: registry entries and applies.

The resource registry and the deployment statuses are written by the InfraDeployment controller; the
runtime operations only read them, and read them defensively: an InfraDeployment names its registry
ConfigMap in `status.registry.configMapName` (the API contract) and that ConfigMap holds `registry.json`.
Entries are accepted in the shapes a registry may take (a list, or `resources`/`entries` of one), with a
resource's type given as ours (`lambda`) or as Terraform's (`aws_lambda_function`); anything unreadable
is skipped, never fatal: an investigation or a remediation then decides without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION, ResourceType
from devops_operator.api.healthcheck import parse_rfc3339
from devops_operator.api.infradeployment import KIND as DEPLOYMENT_KIND
from devops_operator.kube.client import REQUEST_TIMEOUT

REGISTRY_KEY = "registry.json"

# Terraform resource types of the resource types the runtime operations understand.
TERRAFORM_TYPES: dict[str, ResourceType] = {
    "aws_lambda_function": ResourceType.LAMBDA,
    "aws_db_instance": ResourceType.RDS,
    "aws_rds_cluster_instance": ResourceType.RDS,
    "aws_ecs_service": ResourceType.ECS_SERVICE,
    "aws_api_gateway_rest_api": ResourceType.APIGATEWAY_REST,
    "aws_apigatewayv2_api": ResourceType.APIGATEWAY_HTTP,
    "aws_s3_bucket": ResourceType.S3,
    "aws_dynamodb_table": ResourceType.DYNAMODB,
    "aws_sqs_queue": ResourceType.SQS,
}


@dataclass(frozen=True)
class RegisteredResource:
    type: ResourceType | None
    id: str | None
    name: str | None = None
    arn: str | None = None
    region: str | None = None
    cluster: str | None = None
    deployment: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> set[str]:
        found = {value for value in (self.id, self.name, self.arn) if value}
        if self.arn:
            found.add(self.arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
        return found


@dataclass(frozen=True)
class AppliedDeployment:
    name: str
    applied_at: datetime
    plan_id: str | None = None
    revision: str | None = None


def _resource_type(value: Any) -> ResourceType | None:
    text = str(value or "")
    if text in TERRAFORM_TYPES:
        return TERRAFORM_TYPES[text]
    try:
        return ResourceType(text)
    except ValueError:
        return None


def _text(entry: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def parse_registry(document: Any, deployment: str | None = None) -> list[RegisteredResource]:
    """Registry entries from a registry.json document (pure; unknown shapes give no entries)."""
    if isinstance(document, Mapping):
        document = document.get("resources", document.get("entries", []))
    if not isinstance(document, list):
        return []
    found = []
    for entry in document:
        if not isinstance(entry, Mapping):
            continue
        tags = entry.get("tags")
        found.append(RegisteredResource(
            type=_resource_type(entry.get("type") or entry.get("resourceType")),
            id=_text(entry, "id", "identifier"),
            name=_text(entry, "name"),
            arn=_text(entry, "arn", "ARN"),
            region=_text(entry, "region"),
            cluster=_text(entry, "cluster"),
            deployment=_text(entry, "deployment", "owner") or deployment,
            tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
        ))
    return found


def find(resources: Iterable[RegisteredResource], reference: str,
         resource_type: ResourceType | None = None) -> RegisteredResource | None:
    """The registry entry an id, name or ARN names (of that type, when one is given)."""
    for resource in resources:
        if resource_type is not None and resource.type is not None and resource.type != resource_type:
            continue
        if reference in resource.names():
            return resource
    return None


def _deployments(api: ApiClient, namespace: str, project: str, project_namespace: str,
                 environment: str) -> list[Mapping[str, Any]]:
    try:
        listing = CustomObjectsApi(api).list_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, DEPLOYMENT_KIND.plural, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status in (403, 404):
            return []
        raise
    assert isinstance(listing, dict)
    mine = []
    for item in listing.get("items") or []:
        spec = item.get("spec") or {}
        ref = spec.get("projectRef") or {}
        if (ref.get("name") == project and (ref.get("namespace") or namespace) == project_namespace
                and spec.get("environment") == environment):
            mine.append(item)
    return mine


def registry_resources(api: ApiClient, namespace: str, project: str, project_namespace: str,
                       environment: str) -> list[RegisteredResource]:
    """Every registry entry of the project's deployments to `environment` in `namespace`."""
    found: list[RegisteredResource] = []
    seen: set[str] = set()
    for deployment in _deployments(api, namespace, project, project_namespace, environment):
        registry = ((deployment.get("status") or {}).get("registry") or {}).get("configMapName")
        if not isinstance(registry, str) or not registry or registry in seen:
            continue
        seen.add(registry)
        try:
            configmap = CoreV1Api(api).read_namespaced_config_map(registry, namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status in (403, 404):
                continue
            raise
        text = (configmap.data or {}).get(REGISTRY_KEY)
        try:
            document = json.loads(text) if text else None
        except json.JSONDecodeError:
            continue
        found += parse_registry(document, deployment["metadata"].get("name"))
    return found


def applied_deployments(api: ApiClient, namespace: str, project: str, project_namespace: str,
                        environment: str) -> list[AppliedDeployment]:
    """The last apply of each of the project's deployments to `environment` (status.lastAppliedAt)."""
    found = []
    for deployment in _deployments(api, namespace, project, project_namespace, environment):
        status = deployment.get("status") or {}
        at = status.get("lastAppliedAt")
        if not isinstance(at, str):
            continue
        try:
            moment = parse_rfc3339(at)
        except ValueError:
            continue
        plan = status.get("lastAppliedPlanId")
        revision = status.get("lastAppliedRevision")
        found.append(AppliedDeployment(deployment["metadata"].get("name", "?"), moment,
                                       plan if isinstance(plan, str) else None,
                                       revision if isinstance(revision, str) else None))
    return found
