"""Whether a target belongs to the referring namespace's part of a project (pure): registry, naming, tags.

A Remediation (and an Investigation's log groups) act only on the project's own resources, and only on
those of the referring namespace. What proves it, strongest first:

- the project's resource registry lists it under one of the referring namespace's own deployments (the
  registry is read only where the operator wrote it: `deploy/registry_reader.py`); no AWS call;
- its name follows the project's naming pattern for that environment, when the pattern has a fixed part
  naming the project (`{project}`; a pattern of `{resource}` alone matches every name, so it proves
  nothing); no AWS call;
- it carries the project's tags (`project` and `environment`; one AWS call).

Names and tags are the project's, not a namespace's, and anyone who can tag can set tags: they count only
for a referrer in the project's own namespace. A tenant of a shared project (another namespace, admitted
by the project's grant) proves ownership through its own deployments' registry entries alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devops_operator import naming, projects
from devops_operator.api.common import ResourceType
from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.deploy.registry_reader import RegistryEntry, find
from devops_operator.ops.investigation import sources

PROJECT_TAG = "project"
ENVIRONMENT_TAG = "environment"
FIXED_PART = "project"  # the placeholder whose value tells this project's names from every other's


@dataclass(frozen=True)
class Ownership:
    belongs: bool
    how: str


def _pattern_values(spec: DevOpsProjectSpec, project_name: str, environment: str) -> dict[str, str | None]:
    values = projects.naming_values(spec, project_name, environment, "")
    values.pop("resource")
    return values


def naming_proves_ownership(spec: DevOpsProjectSpec, project_name: str, environment: str) -> bool:
    """Whether a name following the pattern can only be this project's: the pattern has {project}, with a value."""
    try:
        pattern = naming.parse_pattern(spec.naming.pattern)
    except naming.NamingError:
        return False
    return FIXED_PART in pattern.placeholders and bool(_pattern_values(spec, project_name, environment).get(FIXED_PART))


def _by_name(names: Iterable[str], project: DevOpsProjectSpec, project_name: str, environment: str) -> str | None:
    if not naming_proves_ownership(project, project_name, environment):
        return None
    pattern = naming.parse_pattern(project.naming.pattern)
    values = _pattern_values(project, project_name, environment)
    return next((name for name in names if pattern.matches(name, values)), None)


def without_aws(resource_type: ResourceType, names: Iterable[str], project: DevOpsProjectSpec, project_name: str,
                environment: str, registry: Iterable[RegistryEntry], *,
                same_namespace: bool = True) -> Ownership | None:
    """Ownership from the registry (entries already scoped to the referrer's namespace) or the naming pattern
    (the project's own namespace only); None when only the tags can tell, or nothing can."""
    registry = list(registry)
    names = list(names)
    for name in names:
        entry = find(registry, name, resource_type)
        if entry is not None:
            return Ownership(True, f"in the project's resource registry (deployment {entry.deployment})")
    if not same_namespace:
        return None
    named = _by_name(names, project, project_name, environment)
    if named is not None:
        return Ownership(True, f"its name {named} follows the naming pattern {project.naming.pattern}")
    return None


def by_tags(tags: Mapping[str, str], project: DevOpsProjectSpec, project_name: str, environment: str) -> Ownership:
    name = projects.project_name(project, project_name)
    if tags.get(PROJECT_TAG) == name and tags.get(ENVIRONMENT_TAG) == environment:
        return Ownership(True, f"tagged {PROJECT_TAG}={name}, {ENVIRONMENT_TAG}={environment}")
    return Ownership(False, "")


def log_group_owner(group: str, project: DevOpsProjectSpec, project_name: str, environment: str,
                    registry: Iterable[RegistryEntry], *, same_namespace: bool = True) -> Ownership | None:
    """Whether a log group is one of the referrer's: a log group of a registry entry of its own deployments,
    or (the project's own namespace only) a group whose last path part follows the naming pattern."""
    for entry in registry:
        if entry.type is None:
            continue
        ref = sources.ServiceRef(entry.type, entry.name or entry.id or "", entry.cluster)
        if group in ref.log_groups():
            return Ownership(True, f"the log group of {entry.type.value} {ref.id} in the project's resource "
                                   f"registry (deployment {entry.deployment})")
    if not same_namespace:
        return None
    parts = [part for part in group.split("/") if part]
    named = _by_name(parts[-1:], project, project_name, environment)
    if named is not None:
        return Ownership(True, f"its name {named} follows the naming pattern {project.naming.pattern}")
    return None


def refusal(kind: str, target: str, project: DevOpsProjectSpec, project_key: str, project_name: str,
            environment: str, *, same_namespace: bool = True, field: str = "spec.target",
            what: str = "a resource") -> str:
    name = projects.project_name(project, project_name)
    if not same_namespace:
        return (f"{field}: {kind} {target} is not {what} of this namespace's deployments of DevOpsProject "
                f"{project_key} in environment {environment}: from another namespace than the project's, only "
                "resources in the project's resource registry under this namespace's own InfraDeployments count "
                "(names and tags are the whole project's); nothing was done")
    values = {key: naming.sanitize(value or "") for key, value in _pattern_values(project, project_name,
                                                                                    environment).items()}
    try:
        example = project.naming.pattern.format(**values, resource="<resource>")
    except (KeyError, ValueError, IndexError):
        example = project.naming.pattern
    if naming_proves_ownership(project, project_name, environment):
        named = f"its name does not follow the naming pattern {project.naming.pattern} (names like {example})"
    else:
        named = (f"the naming pattern {project.naming.pattern} has no {{{FIXED_PART}}} part, so a name proves "
                 "nothing")
    return (f"{field}: {kind} {target} is not {what} of DevOpsProject {project_key} in environment "
            f"{environment}: it is not in the project's resource registry under this namespace's deployments, "
            f"{named}, and it is not tagged {PROJECT_TAG}={name}, {ENVIRONMENT_TAG}={environment}; nothing was done")
