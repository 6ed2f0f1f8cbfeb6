"""Remediation actions: one registry entry per action, the one place that says what an action is.

Cloud Custodian style: every action is a frozen `ActionSpec` in `REGISTRY`, and everything else
about actions is derived from that table:
- `RemediationAction`, the enum the CRDs publish (a Remediation's `spec.action` and a HealthCheck's
  `spec.remediationPolicy.action`);
- `action_problems` and `target_problems`, the validation both kinds share;
- what an implementation needs, per resource type: what the action does, the interruption it
  causes, the IAM permissions the environment's identity must hold, and how the action is undone
  when verification fails (its inverse).

Adding an action means adding one entry here (and a `RemediationParameters` field if it takes a new
parameter); an implementation looks its action up with `spec_of(name)` and `spec.target(type)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field
from pydantic.alias_generators import to_camel

from devops_operator.api.common import Model, ResourceType


class InterruptionLevel(StrEnum):
    """How much of the service an action is expected to interrupt."""

    NONE = "none"
    BRIEF = "brief"
    PARTIAL = "partial"
    FULL = "full"


class RemediationParameters(Model):
    """Parameters of an action; each applies only to the action (and resource type) it names."""

    desired_count: int | None = Field(
        default=None, ge=0, le=5000, description="scale, ecs-service: the service's new desired task count."
    )
    reserved_concurrency: int | None = Field(
        default=None,
        ge=0,
        le=100000,
        description="scale, lambda: the function's new reserved concurrency (0 throttles every invocation).",
    )
    target_version: str | None = Field(
        default=None,
        pattern=r"^[0-9]+$",
        description=(
            "rollback, lambda: the published version the alias is pointed to; "
            "defaults to the version the alias pointed to before the current one."
        ),
    )
    task_definition: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^(arn:aws[a-zA-Z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/)?[A-Za-z0-9_-]{1,255}:[0-9]+$",
        description=(
            "rollback, ecs-service: the task definition (family:revision or ARN) the service returns to; "
            "defaults to the task definition the service ran before the current one."
        ),
    )
    force_failover: bool | None = Field(
        default=None,
        description="reboot, rds: reboot with a failover to the standby (Multi-AZ instances only).",
    )


@dataclass(frozen=True)
class ActionParameter:
    """One `RemediationParameters` field as an action uses it: on which resource type, and whether it must be set."""

    field: str
    resource_type: ResourceType
    required: bool = False

    @property
    def wire_name(self) -> str:
        """The field as written in a manifest (`desiredCount`)."""
        return to_camel(self.field)


@dataclass(frozen=True)
class TargetField:
    """A field of the Remediation's target the action needs on this resource type, and why."""

    name: str
    why: str


@dataclass(frozen=True)
class ActionTarget:
    """What an action does to one resource type."""

    resource_type: ResourceType
    effect: str
    interruption: InterruptionLevel
    # IAM actions the environment's identity needs: reads for the impact assessment and the ownership check
    # (tags) included; the executors in aws/executors.py call nothing else (tests/test_remediation_actions.py).
    permissions: tuple[str, ...]
    needs: tuple[TargetField, ...] = ()


@dataclass(frozen=True)
class Inverse:
    """How an action is undone: the same kind of action, pointed back at the state recorded before it
    (`status.actionResult.previousState`)."""

    action: str
    restores: str


@dataclass(frozen=True)
class ActionSpec:
    """One remediation action."""

    name: str
    description: str
    targets: tuple[ActionTarget, ...]
    parameters: tuple[ActionParameter, ...] = ()
    inverse: Inverse | None = None
    # Why nothing is undone, for an action without an inverse.
    no_inverse: str = ""

    @property
    def resource_types(self) -> frozenset[ResourceType]:
        return frozenset(t.resource_type for t in self.targets)

    @property
    def reversible(self) -> bool:
        return self.inverse is not None

    def target(self, resource_type: ResourceType | str) -> ActionTarget | None:
        """What the action does to that resource type; None where it does not apply."""
        wanted = ResourceType(resource_type)
        return next((t for t in self.targets if t.resource_type == wanted), None)

    def parameters_for(self, resource_type: ResourceType | str) -> tuple[ActionParameter, ...]:
        wanted = ResourceType(resource_type)
        return tuple(p for p in self.parameters if p.resource_type == wanted)

    def permissions(self, resource_type: ResourceType | str) -> tuple[str, ...]:
        """IAM actions needed to act on that type (empty where the action does not apply)."""
        target = self.target(resource_type)
        return target.permissions if target is not None else ()


REGISTRY: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="restart",
        description="Replace the running instances of the code with fresh ones.",
        targets=(
            ActionTarget(
                ResourceType.LAMBDA,
                effect="a configuration update that makes Lambda start fresh execution environments",
                interruption=InterruptionLevel.BRIEF,
                permissions=(
                    "lambda:GetFunctionConfiguration",
                    "lambda:ListTags",
                    "lambda:UpdateFunctionConfiguration",
                ),
            ),
            ActionTarget(
                ResourceType.ECS_SERVICE,
                effect="a new deployment of the service (forceNewDeployment): tasks replaced one by one",
                interruption=InterruptionLevel.BRIEF,
                permissions=("ecs:DescribeServices", "ecs:ListTagsForResource", "ecs:UpdateService"),
            ),
        ),
        no_inverse="self-healing: a restart changes no setting a rollback could put back",
    ),
    ActionSpec(
        name="scale",
        description="Change how much capacity the service has.",
        targets=(
            ActionTarget(
                ResourceType.LAMBDA,
                effect="sets the function's reserved concurrency",
                interruption=InterruptionLevel.PARTIAL,  # invocations above the new limit are throttled
                # Delete: scaling back to a function that had no reservation removes the one set.
                permissions=(
                    "lambda:DeleteFunctionConcurrency",
                    "lambda:GetFunctionConcurrency",
                    "lambda:GetFunctionConfiguration",
                    "lambda:ListTags",
                    "lambda:PutFunctionConcurrency",
                ),
            ),
            ActionTarget(
                ResourceType.ECS_SERVICE,
                effect="sets the service's desired task count",
                interruption=InterruptionLevel.PARTIAL,  # scaling in stops tasks that serve traffic
                permissions=("ecs:DescribeServices", "ecs:ListTagsForResource", "ecs:UpdateService"),
            ),
        ),
        parameters=(
            ActionParameter("desired_count", ResourceType.ECS_SERVICE, required=True),
            ActionParameter("reserved_concurrency", ResourceType.LAMBDA, required=True),
        ),
        inverse=Inverse(
            "scale", "scales back to the desired count or reserved concurrency recorded before the action"
        ),
    ),
    ActionSpec(
        name="rollback",
        description="Return the service to the code it ran before the current version.",
        targets=(
            ActionTarget(
                ResourceType.LAMBDA,
                effect="points the alias back at the previous published version",
                interruption=InterruptionLevel.NONE,  # an alias moves atomically
                permissions=(
                    "lambda:GetAlias",
                    "lambda:GetFunctionConfiguration",
                    "lambda:ListTags",
                    "lambda:ListVersionsByFunction",
                    "lambda:UpdateAlias",
                ),
                needs=(TargetField("alias", "the alias is moved back"),),
            ),
            ActionTarget(
                ResourceType.ECS_SERVICE,
                effect="deploys the previous task definition revision",
                interruption=InterruptionLevel.BRIEF,
                permissions=(
                    "ecs:DescribeServices",
                    "ecs:DescribeTaskDefinition",
                    "ecs:ListTagsForResource",
                    "ecs:ListTaskDefinitions",
                    "ecs:UpdateService",
                ),
            ),
        ),
        parameters=(
            ActionParameter("target_version", ResourceType.LAMBDA),
            ActionParameter("task_definition", ResourceType.ECS_SERVICE),
        ),
        inverse=Inverse(
            "rollback", "rolls forward to the version or task definition that ran before the rollback"
        ),
    ),
    ActionSpec(
        name="reboot",
        description="Reboot the database instance, optionally failing over to its standby.",
        targets=(
            ActionTarget(
                ResourceType.RDS,
                effect="reboots the DB instance (with forceFailover: fails over to the Multi-AZ standby)",
                interruption=InterruptionLevel.FULL,  # connections drop until the instance is back
                # Events: after an interruption, whether the reboot happened is read from them.
                permissions=(
                    "rds:DescribeDBInstances",
                    "rds:DescribeEvents",
                    "rds:ListTagsForResource",
                    "rds:RebootDBInstance",
                ),
            ),
        ),
        parameters=(ActionParameter("force_failover", ResourceType.RDS),),
        no_inverse="a reboot changes no setting: there is nothing to put back",
    ),
)

_BY_NAME: dict[str, ActionSpec] = {spec.name: spec for spec in REGISTRY}

# Derived from the registry, so the CRDs' enum can never disagree with it. Its members are
# reached by value (`RemediationAction("scale")`): the names exist only at run time.
RemediationAction = StrEnum(  # type: ignore[misc]
    "RemediationAction", [(spec.name.upper(), spec.name) for spec in REGISTRY], module=__name__
)
RemediationAction.__doc__ = "A corrective action on one resource: " + ", ".join(_BY_NAME) + "."


def spec_of(action: str) -> ActionSpec:
    """The registry entry of an action (a `RemediationAction` or its value)."""
    try:
        return _BY_NAME[str(action)]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; known actions: {', '.join(_BY_NAME)}") from None


def action_problems(
    action: str,
    parameters: RemediationParameters,
    resource_type: ResourceType | str | None = None,
) -> list[str]:
    """What is wrong with an action, its parameters and (when known) the resource type it acts on.

    Shared by Remediation (one known resource) and a HealthCheck's remediation policy (type unknown
    until the check resolves its targets, so only the action-level rules apply there).
    """
    spec = spec_of(action)
    rtype = ResourceType(resource_type) if resource_type is not None else None
    problems: list[str] = []
    if rtype is not None and rtype not in spec.resource_types:
        supported = ", ".join(sorted(spec.resource_types))
        problems.append(f"action {spec.name} does not apply to resource type {rtype.value} (only {supported})")
    given = {name for name in RemediationParameters.model_fields if getattr(parameters, name) is not None}
    declared = {p.field: p for p in spec.parameters}
    for name in sorted(given - declared.keys()):
        problems.append(f"parameters.{to_camel(name)} does not apply to action {spec.name}")
    for name in sorted(given & declared.keys()):
        applies_to = declared[name].resource_type
        if rtype is not None and applies_to != rtype:
            problems.append(f"parameters.{to_camel(name)} applies to {applies_to.value}, not {rtype.value}")
    required = [p for p in spec.parameters if p.required]
    if rtype is not None:
        for parameter in required:
            if parameter.resource_type == rtype and parameter.field not in given:
                problems.append(f"action {spec.name} on {rtype.value} needs parameters.{parameter.wire_name}")
    elif required and not given & {p.field for p in required}:
        # Which one is needed depends on the type; one of them must be there for any type.
        choices = " or ".join(f"parameters.{p.wire_name}" for p in required)
        problems.append(f"action {spec.name} needs {choices}")
    return problems


def target_problems(action: str, resource_type: ResourceType | str, target_fields: dict[str, object]) -> list[str]:
    """Target fields the action needs on that resource type and that are not set."""
    spec = spec_of(action)
    target = spec.target(resource_type)
    if target is None:
        return []  # action_problems reports the mismatch of action and type
    return [
        f"action {spec.name} on {target.resource_type.value} needs target.{needed.name} ({needed.why})"
        for needed in target.needs
        if not target_fields.get(needed.name)
    ]
