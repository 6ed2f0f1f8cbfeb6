"""The remediation-action registry: one entry per action, and everything about actions derived from it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devops_operator.api import crdgen, healthcheck, remediation
from devops_operator.api.actions import (
    REGISTRY,
    InterruptionLevel,
    RemediationAction,
    RemediationParameters,
    action_problems,
    spec_of,
    target_problems,
)
from devops_operator.api.common import ResourceType
from devops_operator.api.permissionrequest import IAM_ACTION_PATTERN

# What the implementations will call, per action and resource type: the least privilege they need.
EXPECTED_PERMISSIONS = {
    ("restart", ResourceType.LAMBDA): (
        "lambda:GetFunctionConfiguration", "lambda:ListTags", "lambda:UpdateFunctionConfiguration"),
    ("restart", ResourceType.ECS_SERVICE): ("ecs:DescribeServices", "ecs:ListTagsForResource", "ecs:UpdateService"),
    ("scale", ResourceType.LAMBDA): (
        "lambda:DeleteFunctionConcurrency",
        "lambda:GetFunctionConcurrency",
        "lambda:GetFunctionConfiguration",
        "lambda:ListTags",
        "lambda:PutFunctionConcurrency",
    ),
    ("scale", ResourceType.ECS_SERVICE): ("ecs:DescribeServices", "ecs:ListTagsForResource", "ecs:UpdateService"),
    ("rollback", ResourceType.LAMBDA): (
        "lambda:GetAlias",
        "lambda:GetFunctionConfiguration",
        "lambda:ListTags",
        "lambda:ListVersionsByFunction",
        "lambda:UpdateAlias",
    ),
    ("rollback", ResourceType.ECS_SERVICE): (
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTagsForResource",
        "ecs:ListTaskDefinitions",
        "ecs:UpdateService",
    ),
    ("reboot", ResourceType.RDS): (
        "rds:DescribeDBInstances", "rds:DescribeEvents", "rds:ListTagsForResource", "rds:RebootDBInstance"),
}
SERVICE_OF_TYPE = {ResourceType.LAMBDA: "lambda", ResourceType.ECS_SERVICE: "ecs", ResourceType.RDS: "rds"}


def test_registry_lists_each_action_once_and_is_the_enum() -> None:
    names = [spec.name for spec in REGISTRY]
    assert names == ["restart", "scale", "rollback", "reboot"]
    assert [member.value for member in RemediationAction] == names
    assert RemediationAction("scale") == "scale"
    assert spec_of(RemediationAction("reboot")) is REGISTRY[3]


@pytest.mark.parametrize(("action", "resource_type"), sorted(EXPECTED_PERMISSIONS))
def test_permissions_per_action_and_resource_type(action: str, resource_type: ResourceType) -> None:
    assert spec_of(action).permissions(resource_type) == EXPECTED_PERMISSIONS[(action, resource_type)]


def test_every_target_is_declared_and_nothing_else() -> None:
    declared = {(spec.name, target.resource_type) for spec in REGISTRY for target in spec.targets}
    assert declared == set(EXPECTED_PERMISSIONS)
    assert spec_of("reboot").permissions(ResourceType.LAMBDA) == ()
    assert spec_of("reboot").target("lambda") is None


def test_permissions_are_iam_actions_of_the_resource_types_service() -> None:
    for spec in REGISTRY:
        for target in spec.targets:
            assert target.permissions, (spec.name, target.resource_type)
            for permission in target.permissions:
                assert re.match(IAM_ACTION_PATTERN, permission), permission
                assert permission.split(":")[0] == SERVICE_OF_TYPE[target.resource_type], permission
            assert len(set(target.permissions)) == len(target.permissions)


def test_inverses() -> None:
    inverses = {spec.name: spec.inverse.action if spec.inverse else None for spec in REGISTRY}
    assert inverses == {"restart": None, "scale": "scale", "rollback": "rollback", "reboot": None}
    for spec in REGISTRY:
        assert spec.reversible is (spec.inverse is not None)
        # Either how it is undone, or why nothing needs undoing: never silent.
        assert bool(spec.inverse) != bool(spec.no_inverse), spec.name
        if spec.inverse is not None:
            assert spec_of(spec.inverse.action) and spec.inverse.restores
    assert "self-healing" in spec_of("restart").no_inverse


def test_interruption_levels() -> None:
    levels = {(spec.name, t.resource_type): t.interruption for spec in REGISTRY for t in spec.targets}
    assert levels[("rollback", ResourceType.LAMBDA)] is InterruptionLevel.NONE  # an alias moves atomically
    assert levels[("reboot", ResourceType.RDS)] is InterruptionLevel.FULL
    assert all(isinstance(level, InterruptionLevel) for level in levels.values())


def test_parameters_are_declared_once_and_exist() -> None:
    declared = [(spec.name, p.field) for spec in REGISTRY for p in spec.parameters]
    fields = [field for _, field in declared]
    # Each parameter belongs to exactly one action: one place says what it is for.
    assert sorted(fields) == sorted(RemediationParameters.model_fields)
    for spec in REGISTRY:
        for parameter in spec.parameters:
            assert parameter.resource_type in spec.resource_types, (spec.name, parameter.field)
            described = RemediationParameters.model_fields[parameter.field].description or ""
            assert described.startswith(f"{spec.name}, {parameter.resource_type.value}:"), described
    required = {(spec.name, p.resource_type): p.wire_name for spec in REGISTRY for p in spec.parameters if p.required}
    assert required == {
        ("scale", ResourceType.ECS_SERVICE): "desiredCount",
        ("scale", ResourceType.LAMBDA): "reservedConcurrency",
    }


def _enums(schema: Any, found: dict[str, list[str]], path: str = "") -> dict[str, list[str]]:
    if isinstance(schema, dict):
        if "enum" in schema:
            found[path] = schema["enum"]
        for key, value in schema.items():
            _enums(value, found, f"{path}.{key}")
    elif isinstance(schema, list):
        for item in schema:
            _enums(item, found, path)
    return found


@pytest.mark.parametrize("kind", [remediation.KIND, healthcheck.KIND], ids=["Remediation", "HealthCheck"])
def test_the_crd_enum_of_actions_is_the_registry(kind: Any) -> None:
    crd = crdgen.render_crd(kind)
    enums = _enums(crd, {})
    action_enums = [values for path, values in enums.items() if path.endswith(".action")]
    assert action_enums and all(values == [spec.name for spec in REGISTRY] for values in action_enums)


@pytest.mark.parametrize(
    ("action", "parameters", "resource_type", "problems"),
    [
        ("restart", {}, "lambda", []),
        ("restart", {}, "rds", ["action restart does not apply to resource type rds (only ecs-service, lambda)"]),
        ("scale", {"desired_count": 3}, "ecs-service", []),
        ("scale", {}, "ecs-service", ["action scale on ecs-service needs parameters.desiredCount"]),
        ("scale", {}, "lambda", ["action scale on lambda needs parameters.reservedConcurrency"]),
        (
            "scale",
            {"reserved_concurrency": 5},
            "ecs-service",
            [
                "parameters.reservedConcurrency applies to lambda, not ecs-service",
                "action scale on ecs-service needs parameters.desiredCount",
            ],
        ),
        ("scale", {}, None, ["action scale needs parameters.desiredCount or parameters.reservedConcurrency"]),
        # A parameter of another action does not tell scale how much: both problems are reported
        # (before the registry, the "needs" line was left out as soon as any parameter was set).
        (
            "scale",
            {"target_version": "3"},
            None,
            [
                "parameters.targetVersion does not apply to action scale",
                "action scale needs parameters.desiredCount or parameters.reservedConcurrency",
            ],
        ),
        ("rollback", {}, "ecs-service", []),
        ("rollback", {"force_failover": True}, None, ["parameters.forceFailover does not apply to action rollback"]),
        ("reboot", {"force_failover": True}, "rds", []),
    ],
)
def test_action_problems(
    action: str, parameters: dict[str, Any], resource_type: str | None, problems: list[str]
) -> None:
    assert action_problems(action, RemediationParameters(**parameters), resource_type) == problems


def test_target_fields_an_action_needs() -> None:
    assert target_problems("rollback", "lambda", {"id": "orders", "alias": None}) == [
        "action rollback on lambda needs target.alias (the alias is moved back)"
    ]
    assert target_problems("rollback", "lambda", {"id": "orders", "alias": "live"}) == []
    assert target_problems("restart", "lambda", {"id": "orders"}) == []
    assert target_problems("reboot", "lambda", {}) == []  # the type mismatch is action_problems' to report


def test_an_unknown_action_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown action 'terminate'; known actions: restart, scale, rollback, reboot"):
        spec_of("terminate")
