"""The Remediation's pure parts: the assessment and its digest, ownership, verification timing, targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_operator.api.common import ResourceType
from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.api.healthcheck import Verdict
from devops_operator.api.remediation import RemediationSpec
from devops_operator.aws.executors import EXECUTORS, Plan, PlannedChange, Target
from devops_operator.ops.registry_view import find, parse_registry
from devops_operator.ops.remediation import ownership, verification
from devops_operator.ops.remediation.assessment import approve_command, assess
from devops_operator.ops.remediation.health import first_check_at, window_start

NOW = datetime(2025, 3, 1, 14, 0, 30, tzinfo=UTC)
PLAN = Plan((PlannedChange("desiredCount", "2", "5"),), {"desiredCount": "5"})


def spec(**extra: object) -> RemediationSpec:
    return RemediationSpec.model_validate({
        "projectRef": {"name": "shop"}, "environment": "prod", "action": "scale", "reason": "load",
        "target": {"type": "ecs-service", "id": "acme-shop-core-prod-web", "cluster": "main"},
        "parameters": {"desiredCount": 5}, **extra})


def test_the_assessment_says_what_changes_and_its_digest_covers_the_state() -> None:
    first = assess(spec(), {"desiredCount": "2"}, PLAN, production=True, ownership="naming", now=NOW, previous=None)
    assert first.changes[0].current == "2" and first.changes[0].proposed == "5"
    assert first.interruption_level == "partial" and first.reversible is True and first.approval_required is True
    assert first.expected_interruption == "partial: sets the service's desired task count"
    later = assess(spec(), {"desiredCount": "2"}, PLAN, production=True, ownership="naming",
                   now=NOW + timedelta(hours=1), previous=first)
    assert later == first  # nothing changed: the same assessment, the same digest, an approval still holds
    moved = assess(spec(), {"desiredCount": "4"}, PLAN, production=True, ownership="naming",
                   now=NOW + timedelta(hours=1), previous=first)
    assert moved.digest != first.digest and moved.assessed_at != first.assessed_at
    other = assess(spec(parameters={"desiredCount": 6}), {"desiredCount": "2"}, PLAN, production=True,
                   ownership="naming", now=NOW, previous=None)
    assert other.digest != first.digest


def test_an_assessment_that_may_expire_gets_a_new_digest_when_it_does() -> None:
    expiring = spec(approval={"expiresAfter": "1h"})
    first = assess(expiring, {"desiredCount": "2"}, PLAN, production=True, ownership="", now=NOW, previous=None)
    kept = assess(expiring, {"desiredCount": "2"}, PLAN, production=True, ownership="", now=NOW, previous=first)
    renewed = assess(expiring, {"desiredCount": "2"}, PLAN, production=True, ownership="",
                     now=NOW + timedelta(hours=2), previous=first, expired=True)
    assert kept.digest == first.digest and renewed.digest != first.digest


def test_the_approve_command() -> None:
    assert approve_command("team", "r1", "0123456789abcdef", "alice") == (
        "kubectl -n team patch remediation r1 --type merge -p "
        "'{\"spec\":{\"approval\":{\"approved\":true,\"assessmentDigest\":\"0123456789abcdef\",\"approvedBy\":\"alice\"}}}'")


PROJECT = DevOpsProjectSpec.model_validate({"project": "shop", "organization": "acme", "naming": {
    "pattern": "{organization}-{project}-{subsystem}-{environment}-{resource}"}})


def test_ownership_by_registry_naming_or_tags() -> None:
    registry = parse_registry({"resources": [{"type": "aws_lambda_function", "id": "legacy-api", "arn":
                                              "arn:aws:lambda:us-east-1:123456789012:function:legacy-api"}]},
                              "api-deploy")
    found = ownership.without_aws(ResourceType.LAMBDA, ["legacy-api"], PROJECT, "shop", "test", registry)
    assert found is not None and found.how == "in the project's resource registry (deployment api-deploy)"
    named = ownership.without_aws(ResourceType.LAMBDA, ["acme-shop-core-test-api"], PROJECT, "shop", "test", [])
    assert named is not None and named.how.startswith("its name acme-shop-core-test-api follows")
    assert ownership.without_aws(ResourceType.LAMBDA, ["acme-shop-core-prod-api"], PROJECT, "shop", "test", []) is None
    assert ownership.by_tags({"project": "shop", "environment": "test"}, PROJECT, "shop", "test").belongs
    assert not ownership.by_tags({"project": "shop", "environment": "prod"}, PROJECT, "shop", "test").belongs
    message = ownership.refusal("lambda", "x", PROJECT, "ns/shop", "shop", "test")
    assert "names like acme-shop-core-test-<resource>" in message and message.endswith("nothing was done")


@pytest.mark.parametrize("document", [
    [{"type": "lambda", "id": "fn"}],
    {"entries": [{"resourceType": "aws_lambda_function", "name": "fn"}]},
    {"resources": [{"type": "aws_lambda_function", "arn": "arn:aws:lambda:us-east-1:123456789012:function:fn"}]},
])
def test_registry_shapes_are_read_defensively(document: object) -> None:
    found = find(parse_registry(document), "fn", ResourceType.LAMBDA)
    assert found is not None and found.type == ResourceType.LAMBDA


def test_an_unreadable_registry_has_no_entries() -> None:
    assert parse_registry("nonsense") == [] and parse_registry({"resources": [1, "x", None]}) == []


def test_verification_reads_whole_minutes_after_the_action() -> None:
    assert window_start(NOW) == datetime(2025, 3, 1, 14, 1, tzinfo=UTC)
    assert window_start(datetime(2025, 3, 1, 14, 1, tzinfo=UTC)) == datetime(2025, 3, 1, 14, 1, tzinfo=UTC)
    assert first_check_at(NOW, timedelta(seconds=10)) == datetime(2025, 3, 1, 14, 2, tzinfo=UTC)
    assert first_check_at(NOW, timedelta(minutes=5)) == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(("verdict", "degraded_ok", "late", "expected"), [
    (Verdict.HEALTHY, False, False, verification.Next.PASS),
    (Verdict.DEGRADED, True, False, verification.Next.PASS),
    (Verdict.DEGRADED, False, False, verification.Next.WAIT),
    (Verdict.NO_DATA, True, False, verification.Next.WAIT),
    (Verdict.UNHEALTHY, False, True, verification.Next.FAIL),
    (Verdict.NOT_FOUND, True, True, verification.Next.FAIL),
])
def test_what_a_verdict_means(verdict: Verdict, degraded_ok: bool, late: bool, expected: verification.Next) -> None:
    deadline = NOW - timedelta(seconds=1) if late else NOW + timedelta(minutes=1)
    assert verification.judge(verdict, accept_degraded=degraded_ok, now=NOW, deadline=deadline) == expected
    assert verification.interval(timedelta(0)) == timedelta(seconds=1)
    assert verification.interval(timedelta(minutes=5)) == timedelta(seconds=30)


@pytest.mark.parametrize(("resource_type", "target_id", "name"), [
    (ResourceType.LAMBDA, "arn:aws:lambda:us-east-1:123456789012:function:api:live", "api"),
    (ResourceType.ECS_SERVICE, "arn:aws:ecs:us-east-1:123456789012:service/main/web", "web"),
    (ResourceType.RDS, "arn:aws:rds:us-east-1:123456789012:db:orders-db", "orders-db"),
    (ResourceType.RDS, "orders-db", "orders-db"),
])
def test_a_target_named_by_arn(resource_type: ResourceType, target_id: str, name: str) -> None:
    assert Target(resource_type, target_id).name == name


def test_every_inverse_is_an_executor_of_the_same_type() -> None:
    from devops_operator.api.actions import spec_of
    for (action, resource_type) in EXECUTORS:
        inverse = spec_of(action).inverse
        if inverse is not None:
            assert (inverse.action, resource_type) in EXECUTORS


def test_after_acting_the_spec_acted_on_is_what_counts() -> None:
    from devops_operator.ops.remediation.service import _as_acted
    acted = spec()
    edited = spec(target={"type": "ecs-service", "id": "other", "cluster": "main"}, parameters={"desiredCount": 9})
    status = {"actionResult": {"target": acted.target.to_wire(), "action": "scale",
                               "parameters": acted.parameters.to_wire()}}
    carried = _as_acted(edited, status)
    assert carried.target.id == "acme-shop-core-prod-web" and carried.parameters.desired_count == 5
    assert carried.reason == edited.reason
    assert _as_acted(edited, {}) == edited
