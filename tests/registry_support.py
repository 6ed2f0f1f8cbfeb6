"""Writing a resource registry the way an apply writes it (deploy/registry.py through the ConfigMap store)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client import ApiClient

from devops_operator.deploy import registry
from devops_operator.deploy.registry_reader import REGISTRY_LABEL
from devops_operator.kube.store import ConfigMapDocument
from devops_operator.terraform.planjson import StateResource

from support import get_custom


def lambda_resource(name: str, region: str = "us-east-1", address: str = "aws_lambda_function.api") -> StateResource:
    return StateResource(address=address, type="aws_lambda_function", name=address.rsplit(".", 1)[-1], id=name,
                         arn=f"arn:aws:lambda:{region}:123456789012:function:{name}", region=region)


def write_registry(api: ApiClient, project_namespace: str, project: str, environment: str, deployment: str,
                   resources: Sequence[StateResource]) -> dict[str, Any]:
    """What the InfraDeployment controller's `_register` stores after `deployment` applied `resources`."""
    owner = get_custom(api, "devopsprojects", project_namespace, project)
    document = ConfigMapDocument(api, project_namespace, registry.registry_name(project, environment),
                                 registry.REGISTRY_KEY, owner=owner, labels={REGISTRY_LABEL: "true"},
                                 render=lambda doc: {registry.DEPLOYED_KEY: registry.render_deployed_md(
                                     doc, title=f"{project} / {environment}")})
    stored: dict[str, Any] = document.update(lambda doc: registry.record_apply(
        doc, deployment=deployment, resources=resources, changes=[], plan_id="p1", revision="r1",
        engine="terraform", at="2026-01-01T00:00:00Z"))
    return stored
