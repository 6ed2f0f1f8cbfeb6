"""The resources a check covers, as plain data, from each of the three places targets come from.

- `from_spec`: a HealthCheck's explicit `spec.targets.resources[i]` (an id or an ARN);
- `from_arn`: a resource the Resource Groups Tagging API found (its ARN, by the type's ARN pattern);
- `registry_targets`: an InfraDeployment's entries in the resource registry (Terraform resource types), as
  `deploy/registry_reader.py` reads them.

A `Target` carries the identifier CloudWatch dimensions use, a display name (unique within one check: it
is what status, gauges and SLO references name), and the field it came from, so that a problem with it
names that field.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import MetricSpec, TargetResource
from devops_operator.ops.health.registry import BY_TERRAFORM_TYPE, TYPES


@dataclass(frozen=True)
class Target:
    """One AWS resource to check."""

    type: ResourceType
    id: str  # what CloudWatch's dimensions use: function name, DB identifier, queue name, ...
    name: str  # display name: unique within a check
    region: str | None = None  # None: the environment's region
    cluster: str | None = None  # ecs-service only
    stage: str | None = None  # API Gateway only
    arn: str | None = None
    metrics: tuple[MetricSpec, ...] = ()  # this target's own metric overrides
    field: str = ""  # where it was named: spec.targets.resources[1], a registry address, a tag search
    check_existence: bool = True  # False where the source already proves it exists (the tagging API)

    @property
    def key(self) -> tuple[str, str, str | None, str | None, str | None]:
        return (str(self.type), self.id, self.cluster, self.stage, self.region)

    def describe(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.type} {self.id}{where}"


@dataclass(frozen=True)
class ParsedArn:
    type: ResourceType
    id: str
    region: str | None
    cluster: str | None


def parse_arn(arn: str, wanted: ResourceType | None = None) -> ParsedArn | None:
    """The resource an ARN names, by each type's ARN pattern (None: not an ARN of a supported type)."""
    for info in TYPES.values():
        if wanted is not None and info.type != wanted:
            continue
        match = info.arn_pattern.match(arn)
        if match:
            groups = match.groupdict()
            return ParsedArn(
                type=info.type,
                id=groups["id"],
                region=groups.get("region") or None,
                cluster=groups.get("cluster") or None,
            )
    return None


def from_spec(resource: TargetResource, index: int) -> Target:
    """An explicit target; an ARN given as id is reduced to the identifier CloudWatch uses."""
    where = f"spec.targets.resources[{index}]"
    ident, region, cluster, arn = resource.id, resource.region, resource.cluster, None
    if resource.id.startswith("arn:"):
        parsed = parse_arn(resource.id, ResourceType(resource.type))
        if parsed is not None:
            ident, arn = parsed.id, resource.id
            region = region or parsed.region
            cluster = cluster or parsed.cluster
    return Target(
        type=ResourceType(resource.type),
        id=ident,
        name=resource.display_name,
        region=region,
        cluster=cluster,
        stage=resource.stage,
        arn=arn,
        metrics=tuple(resource.metrics),
        field=where,
    )


def arn_problems(resources: Sequence[TargetResource]) -> list[tuple[str, str]]:
    """(field, message) for every explicit id that looks like an ARN but is not one of its type."""
    problems = []
    for index, resource in enumerate(resources):
        if resource.id.startswith("arn:") and parse_arn(resource.id, ResourceType(resource.type)) is None:
            example = TYPES[ResourceType(resource.type)].arn_example
            problems.append((
                f"spec.targets.resources[{index}].id",
                f"{resource.id!r} is not an ARN of a {resource.type} (expected e.g. {example}); or give the "
                "plain identifier",
            ))
    return problems


def from_arn(arn: str, wanted: Iterable[ResourceType] = ()) -> Target | None:
    """A resource the tagging API found; None when its type is not one HealthCheck checks."""
    allowed = set(wanted)
    parsed = parse_arn(arn)
    if parsed is None or (allowed and parsed.type not in allowed):
        return None
    return Target(
        type=parsed.type,
        id=parsed.id,
        name=parsed.id,
        region=parsed.region,
        cluster=parsed.cluster,
        arn=arn,
        field="spec.targets.tagSelector",
        # The tagging API lists existing resources, except REST APIs: their ARN holds the API's id, and
        # CloudWatch wants its name, which the existence check's inventory supplies.
        check_existence=TYPES[parsed.type].arn_id_is_cloudwatch_id is False,
    )


# --- the resource registry of an InfraDeployment -----------------------------------------------------


@dataclass
class RegistryTargets:
    """What a deployment's registry entries map to: targets, and the entries of types not checked."""

    targets: list[Target] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # Terraform type -> entries left out


def registry_targets(entries: Iterable[Mapping[str, Any]], deployment: str,
                     types: Iterable[ResourceType] = ()) -> RegistryTargets:
    """The targets of one deployment ("namespace/name") among registry entries (plain dicts).

    Each entry has `type` (the Terraform resource type, e.g. aws_lambda_function), `id`, `arn`, `name`,
    `region`, `tags` and `deployment` ("namespace/name"). The Terraform type decides the resource type;
    the ARN, where it parses, gives the identifier (and region, cluster), else the entry's fields in the
    order the type prefers (a DB instance's `id` is its resource id, its `name` the identifier).
    """
    allowed = set(types)
    found = RegistryTargets()
    for entry in entries:
        if entry.get("deployment") != deployment:
            continue
        terraform_type = str(entry.get("type") or "")
        info = BY_TERRAFORM_TYPE.get(terraform_type)
        if info is None or (allowed and info.type not in allowed):
            found.skipped[terraform_type or "(no type)"] += 1
            continue
        arn = str(entry.get("arn") or "") or None
        parsed = parse_arn(arn, info.type) if arn else None
        ident = parsed.id if parsed else next(
            (str(entry[key]) for key in info.registry_id_fields if entry.get(key)), "")
        if not ident:
            found.skipped[terraform_type] += 1
            continue
        address = str(entry.get("address") or entry.get("name") or ident)
        found.targets.append(Target(
            type=info.type,
            id=ident,
            name=str(entry.get("name") or ident),
            region=(parsed.region if parsed else None) or (str(entry.get("region") or "") or None),
            cluster=parsed.cluster if parsed else None,
            arn=arn,
            field=f"registry of InfraDeployment {deployment}: {terraform_type} {address}",
        ))
    found.targets = unique_names(found.targets)
    return found


_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")


def unique_names(targets: Sequence[Target]) -> list[Target]:
    """Discovered targets with display names made unique: `type/name` where two types share a name,
    then `type/name@region` or the cluster where that is not enough either."""
    counts = Counter(t.name for t in targets)
    named = [t if counts[t.name] == 1 else replace(t, name=f"{t.type}/{t.name}") for t in targets]
    counts = Counter(t.name for t in named)
    result = []
    for target in named:
        if counts[target.name] > 1:
            qualifier = target.cluster or target.region or target.arn or target.id
            target = replace(target, name=f"{target.name}@{_UNSAFE.sub('-', qualifier)}")
        result.append(target)
    return result
