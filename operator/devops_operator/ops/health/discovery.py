"""Targets found elsewhere: resources carrying tags (the tagging API), or a deployment's registry.

- `tagged_targets`: Resource Groups Tagging API GetResources, every page followed and counted; resources
  of types HealthCheck does not check are counted, not returned.
- `deployment_targets`: an InfraDeployment's entries in its project's resource registry (read through
  `deploy/registry_reader.py`, where the operator wrote it), mapped through `targets.registry_targets`. A
  deployment without a registry yet (not applied, or not created) is a wait, not an error: `RegistryWaiting`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION, ResourceType
from devops_operator.api.healthcheck import DeploymentTargets, TagSelector
from devops_operator.api.infradeployment import KIND as DEPLOYMENT_KIND
from devops_operator.deploy.registry import registry_name
from devops_operator.deploy.registry_reader import RegistryUnreadable, of_deployment, read_registry
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.ops.health.calls import CallCounter
from devops_operator.ops.health.registry import TYPES
from devops_operator.ops.health.targets import RegistryTargets, Target, from_arn, registry_targets
from devops_operator.ops.health.targets import unique_names as unique_target_names

TAG_PAGE_SIZE = 100  # GetResources' maximum ResourcesPerPage
MAX_TAG_PAGES = 1000


@dataclass
class Discovered:
    targets: list[Target] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # type -> resources left out


def _arn_type(arn: str) -> str:
    """`lambda:function`-style type of an ARN, for counting what was skipped."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "unknown"
    resource = parts[5].split("/", 1)[0].split(":", 1)[0]
    return f"{parts[2]}:{resource}" if resource else parts[2]


def tagged_targets(client: Any, selector: TagSelector, counter: CallCounter) -> Discovered:
    """Every resource of a supported type carrying all the selector's tags, in the client's region."""
    wanted: Iterable[ResourceType] = [ResourceType(t) for t in selector.resource_types] or list(TYPES)
    params: dict[str, Any] = {
        "TagFilters": [{"Key": key, "Values": [value]} for key, value in sorted(selector.tags.items())],
        "ResourceTypeFilters": sorted({TYPES[t].tagging_type for t in wanted}),
        "ResourcesPerPage": TAG_PAGE_SIZE,
    }
    found = Discovered()
    for _ in range(MAX_TAG_PAGES):
        page = counter.call(client, "get_resources", **params)
        for mapping in page.get("ResourceTagMappingList") or []:
            arn = str(mapping.get("ResourceARN") or "")
            target = from_arn(arn, wanted)
            if target is None:
                found.skipped[_arn_type(arn)] += 1
            else:
                found.targets.append(target)
        token = page.get("PaginationToken")
        if not token:
            break
        params["PaginationToken"] = token
    found.targets = unique_target_names(found.targets)
    return found


class RegistryWaiting(Exception):
    """The deployment's registry is not there (yet); the message says what is missing."""


def _read_deployment(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = CustomObjectsApi(api).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, DEPLOYMENT_KIND.plural, name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise RegistryWaiting(
                f"InfraDeployment {namespace}/{name} does not exist: create it, or fix "
                "spec.targets.deploymentRef.name") from None
        raise
    assert isinstance(obj, dict)
    return obj


def deployment_targets(api: ApiClient, namespace: str, ref: DeploymentTargets) -> RegistryTargets:
    """The targets of an InfraDeployment in this namespace, from its entries in the resource registry.

    The registry is read where the operator writes it (the deployment's project's namespace, through
    `deploy/registry_reader.py`), and only this deployment's entries count.
    """
    deployment = _read_deployment(api, namespace, ref.name)
    if not ((deployment.get("status") or {}).get("registry") or {}).get("configMapName"):
        raise RegistryWaiting(
            f"InfraDeployment {namespace}/{ref.name} has no resource registry yet (status.registry): it is "
            "written once the deployment has been applied")
    spec = deployment.get("spec") or {}
    project = spec.get("projectRef") or {}
    project_namespace = str(project.get("namespace") or namespace)
    name = registry_name(str(project.get("name") or ""), str(spec.get("environment") or ""))
    try:
        found = read_registry(api, project_namespace, str(project.get("name") or ""), str(spec.get("environment")))
    except RegistryUnreadable as exc:
        raise RegistryWaiting(str(exc)) from None
    if found is None:
        raise RegistryWaiting(
            f"the registry ConfigMap {project_namespace}/{name} of InfraDeployment {ref.name} does not exist (yet)")
    types = [ResourceType(t) for t in ref.resource_types]
    me = f"{namespace}/{ref.name}"
    return registry_targets([dict(e.fields) for e in of_deployment(found, me)], me, types)
