"""Whether a target belongs to the project and environment (pure): registry, naming pattern, or tags.

A Remediation acts only on the project's own resources. A resource is the project's when one of these
says so, cheapest first: the project's resource registry lists it (no AWS call), its name follows the
project's naming pattern for that environment (no AWS call), or it carries the project's tags
(`project` and `environment`; one AWS call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devops_operator import naming, projects
from devops_operator.api.common import ResourceType
from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.ops.registry_view import RegisteredResource, find

PROJECT_TAG = "project"
ENVIRONMENT_TAG = "environment"


@dataclass(frozen=True)
class Ownership:
    belongs: bool
    how: str


def _pattern_values(spec: DevOpsProjectSpec, project_name: str, environment: str) -> dict[str, str | None]:
    values = projects.naming_values(spec, project_name, environment, "")
    values.pop("resource")
    return values


def without_aws(resource_type: ResourceType, names: Iterable[str], project: DevOpsProjectSpec, project_name: str,
                environment: str, registry: Iterable[RegisteredResource]) -> Ownership | None:
    """Ownership from the registry or the naming pattern; None when only the tags can tell."""
    registry = list(registry)
    for name in names:
        entry = find(registry, name, resource_type)
        if entry is not None:
            return Ownership(True, f"in the project's resource registry (deployment {entry.deployment})")
    try:
        pattern = naming.parse_pattern(project.naming.pattern)
    except naming.NamingError:
        return None
    values = _pattern_values(project, project_name, environment)
    for name in names:
        if pattern.matches(name, values):
            return Ownership(True, f"its name {name} follows the naming pattern {project.naming.pattern}")
    return None


def by_tags(tags: Mapping[str, str], project: DevOpsProjectSpec, project_name: str, environment: str) -> Ownership:
    name = projects.project_name(project, project_name)
    if tags.get(PROJECT_TAG) == name and tags.get(ENVIRONMENT_TAG) == environment:
        return Ownership(True, f"tagged {PROJECT_TAG}={name}, {ENVIRONMENT_TAG}={environment}")
    return Ownership(False, "")


def refusal(kind: str, target: str, project: DevOpsProjectSpec, project_key: str, project_name: str,
            environment: str) -> str:
    name = projects.project_name(project, project_name)
    values = {key: naming.sanitize(value or "") for key, value in _pattern_values(project, project_name,
                                                                                    environment).items()}
    try:
        example = project.naming.pattern.format(**values, resource="<resource>")
    except (KeyError, ValueError, IndexError):
        example = project.naming.pattern
    return (f"spec.target: {kind} {target} is not a resource of DevOpsProject {project_key} in environment "
            f"{environment}: it is not in the project's resource registry, its name does not follow the naming "
            f"pattern {project.naming.pattern} (names like {example}), and it is not tagged "
            f"{PROJECT_TAG}={name}, {ENVIRONMENT_TAG}={environment}; nothing was done")
