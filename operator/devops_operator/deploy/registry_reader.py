"""Reading the resource registry exactly as `deploy/registry.py` writes it, from where the operator wrote it.

The registry of a project environment is one ConfigMap, `registry_name(project, environment)`, in the
**project's** namespace, labelled `devops.fractary.io/registry=true` and managed by the operator, owned by
the DevOpsProject, holding `registry.json` = `{"resources": {<arn or type:id>: entry}, "deployments": ...}`
where each entry names the deployment (`namespace/name`) that manages it. Every consumer (a HealthCheck's
`deploymentRef` targets, an Investigation's service lookup, a Remediation's ownership check) reads it
through `read_registry`, and nothing else:

- only from the project's namespace: a ConfigMap of that name in the referrer's namespace (which a tenant
  can create) is never looked at;
- only a ConfigMap carrying the operator's labels and an owner reference to the project: anything else
  is ignored (logged), as if there were no registry;
- entries are typed (`RegistryEntry`); `of_namespace` / `of_deployment` scope them to the referrer's own
  deployments, so a tenant of a shared project never claims another tenant's resources.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, ResourceType
from devops_operator.api.devopsproject import KIND as PROJECT_KIND
from devops_operator.deploy.registry import REGISTRY_KEY, registry_name
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.owners import MANAGED_BY, MANAGED_BY_LABEL
from devops_operator.ops.health.registry import BY_TERRAFORM_TYPE

logger = logging.getLogger(__name__)

REGISTRY_LABEL = f"{API_GROUP}/registry"


@dataclass(frozen=True)
class RegistryEntry:
    """One resource a deployment manages, as the registry records it."""

    key: str  # the ARN, or <type>:<id>
    terraform_type: str  # aws_lambda_function, ...
    deployment: str  # namespace/name of the InfraDeployment that manages it
    address: str | None = None  # its Terraform address
    id: str | None = None
    arn: str | None = None
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)  # the entry as written (for the health mapping)

    @property
    def type(self) -> ResourceType | None:
        info = BY_TERRAFORM_TYPE.get(self.terraform_type)
        return info.type if info is not None else None

    @property
    def namespace(self) -> str:
        return self.deployment.partition("/")[0]

    @property
    def name(self) -> str | None:
        """The resource's AWS name: the last part of its ARN (its Terraform name is not an AWS name)."""
        return self.arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if self.arn else self.id

    @property
    def cluster(self) -> str | None:
        """An ECS service's cluster, from its ARN (arn:aws:ecs:...:service/<cluster>/<service>)."""
        if self.arn and ":service/" in self.arn:
            parts = self.arn.split(":service/", 1)[1].split("/")
            return parts[0] if len(parts) == 2 else None
        return None

    def names(self) -> set[str]:
        """What a spec may call it: its id, its ARN and the ARN's last part."""
        return {value for value in (self.id, self.arn, self.name) if value}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def entries(document: Any) -> list[RegistryEntry]:
    """The entries of a registry.json document as `deploy/registry.py` writes it (pure; anything else: none)."""
    resources = document.get("resources") if isinstance(document, Mapping) else None
    if not isinstance(resources, Mapping):
        return []
    found = []
    for key, entry in resources.items():
        if not isinstance(entry, Mapping) or not _text(entry.get("deployment")):
            continue
        tags = entry.get("tags")
        found.append(RegistryEntry(
            key=str(key), terraform_type=str(entry.get("type") or ""), deployment=str(entry["deployment"]),
            address=_text(entry.get("address")), id=_text(entry.get("id")), arn=_text(entry.get("arn")),
            region=_text(entry.get("region")),
            tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
            fields=dict(entry),
        ))
    return found


def of_namespace(found: Iterable[RegistryEntry], namespace: str) -> list[RegistryEntry]:
    """The entries of deployments in `namespace`: what a referrer from there may call its own."""
    return [entry for entry in found if entry.namespace == namespace]


def of_deployment(found: Iterable[RegistryEntry], deployment: str) -> list[RegistryEntry]:
    return [entry for entry in found if entry.deployment == deployment]


def find(found: Iterable[RegistryEntry], reference: str,
         resource_type: ResourceType | None = None) -> RegistryEntry | None:
    """The entry an id, name or ARN names (of that type, when one is given)."""
    for entry in found:
        if resource_type is not None and entry.type != resource_type:
            continue
        if reference in entry.names():
            return entry
    return None


def written_by_operator(configmap: Mapping[str, Any], project_name: str) -> bool:
    """Whether a ConfigMap is a registry as the operator writes it: its labels and an owner reference to the
    project (pure)."""
    metadata = configmap.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(REGISTRY_LABEL) != "true" or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return False
    return any(ref.get("kind") == PROJECT_KIND.kind and ref.get("name") == project_name
               for ref in metadata.get("ownerReferences") or [])


class RegistryUnreadable(Exception):
    """The registry ConfigMap exists but is not one the operator wrote, or does not parse."""


def read_registry(api: ApiClient, project_namespace: str, project_name: str,
                  environment: str) -> list[RegistryEntry] | None:
    """The project environment's registry entries (all deployments'); None when there is none (yet).

    A ConfigMap of that name that the operator did not write (labels, owner) raises RegistryUnreadable.
    """
    name = registry_name(project_name, environment)
    try:
        found: dict[str, Any] = call_json(api, "GET", f"/api/v1/namespaces/{project_namespace}/configmaps/{name}",
                                          timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status in (403, 404):
            return None
        raise
    if not written_by_operator(found, project_name):
        logger.warning("ConfigMap %s/%s is not a registry the operator wrote (labels, owner): ignored",
                       project_namespace, name)
        raise RegistryUnreadable(f"ConfigMap {project_namespace}/{name} is not a registry the operator wrote "
                                 f"(no {REGISTRY_LABEL} label or owner reference to DevOpsProject {project_name})")
    text = (found.get("data") or {}).get(REGISTRY_KEY)
    if text is None:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryUnreadable(f"ConfigMap {project_namespace}/{name} key {REGISTRY_KEY} is not JSON: {exc}") \
            from None
    return entries(document)
