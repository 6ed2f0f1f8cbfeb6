"""A read-only view of what the project's InfraDeployments report: registry entries and applies.

The resource registry and the deployment statuses are written by the InfraDeployment controller; the
runtime operations only read them. The registry is read through `deploy/registry_reader.py`, the one
reader of the format `deploy/registry.py` writes, from the project's namespace only, and scoped to the
referring namespace's own deployments (a tenant of a shared project never sees another tenant's
resources as its own). A registry that is missing or not the operator's gives no entries: an
investigation or a remediation then decides without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.healthcheck import parse_rfc3339
from devops_operator.api.infradeployment import KIND as DEPLOYMENT_KIND
from devops_operator.deploy.registry_reader import RegistryEntry, RegistryUnreadable, find, of_namespace, read_registry
from devops_operator.kube.client import REQUEST_TIMEOUT

RegisteredResource = RegistryEntry
__all__ = ["AppliedDeployment", "RegisteredResource", "applied_deployments", "find", "registry_resources"]


@dataclass(frozen=True)
class AppliedDeployment:
    name: str
    applied_at: datetime
    plan_id: str | None = None
    revision: str | None = None


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
                       environment: str) -> list[RegistryEntry]:
    """The registry entries of `namespace`'s own deployments of the project to `environment`."""
    try:
        found = read_registry(api, project_namespace, project, environment)
    except RegistryUnreadable:
        return []
    return of_namespace(found or [], namespace)


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
