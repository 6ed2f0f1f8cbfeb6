"""The Remediation's pure parts: the assessment and its digest, ownership, verification timing, targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_operator.api.common import ResourceType
from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.api.healthcheck import Verdict
from devops_operator.api.remediation import RemediationSpec
from devops_operator.aws.executors import EXECUTORS, Plan, PlannedChange, Target
from devops_operator.deploy import registry
from devops_operator.deploy.registry_reader import (
    REGISTRY_LABEL,
    RegistryEntry,
    entries,
    find,
    of_namespace,
    written_by_operator,
)
from devops_operator.kube.owners import MANAGED_BY, MANAGED_BY_LABEL
from devops_operator.ops.remediation import ownership, verification
from devops_operator.ops.remediation.assessment import approve_command, assess
from devops_operator.ops.remediation.health import first_check_at, window_start
from devops_operator.terraform.planjson import StateResource

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


def _applied(deployment: str, *resources: StateResource) -> list[RegistryEntry]:
    """Registry entries exactly as an apply writes them (deploy/registry.record_apply)."""
    return entries(registry.record_apply(None, deployment=deployment, resources=list(resources), changes=[],
                                         plan_id="p", revision=None, engine="terraform", at="t"))


def _fn(name: str, address: str = "aws_lambda_function.api") -> StateResource:
    return StateResource(address=address, type="aws_lambda_function", name="api", id=name,
                         arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}", region="us-east-1")


def test_ownership_by_registry_naming_or_tags() -> None:
    registry_entries = _applied("team/api-deploy", _fn("legacy-api"))
    found = ownership.without_aws(ResourceType.LAMBDA, ["legacy-api"], PROJECT, "shop", "test", registry_entries)
    assert found is not None and found.how == "in the project's resource registry (deployment team/api-deploy)"
    named = ownership.without_aws(ResourceType.LAMBDA, ["acme-shop-core-test-api"], PROJECT, "shop", "test", [])
    assert named is not None and named.how.startswith("its name acme-shop-core-test-api follows")
    assert ownership.without_aws(ResourceType.LAMBDA, ["acme-shop-core-prod-api"], PROJECT, "shop", "test", []) is None
    assert ownership.by_tags({"project": "shop", "environment": "test"}, PROJECT, "shop", "test").belongs
    assert not ownership.by_tags({"project": "shop", "environment": "prod"}, PROJECT, "shop", "test").belongs
    message = ownership.refusal("lambda", "x", PROJECT, "ns/shop", "shop", "test")
    assert "names like acme-shop-core-test-<resource>" in message and message.endswith("nothing was done")


def test_the_terraform_name_of_a_registry_entry_is_no_aws_name() -> None:
    """An entry's Terraform name (`api`) must not make a function called `api` the project's."""
    registry_entries = _applied("team/d", _fn("acme-shop-core-test-api"))
    assert ownership.without_aws(ResourceType.LAMBDA, ["api"], PROJECT, "shop", "test", registry_entries) is None
    assert find(registry_entries, "acme-shop-core-test-api", ResourceType.LAMBDA) is not None
    assert find(registry_entries, "acme-shop-core-test-api", ResourceType.SQS) is None


@pytest.mark.parametrize("pattern", ["{resource}", "{environment}-{resource}", "x-{resource}",
                                     "{organization}-{subsystem}-{resource}"])
def test_a_naming_pattern_without_the_project_proves_no_ownership(pattern: str) -> None:
    """`{resource}` matches every name: a pattern proves ownership only with the project's name in it."""
    spec = DevOpsProjectSpec.model_validate({"project": "shop", "naming": {"pattern": pattern}})
    assert not ownership.naming_proves_ownership(spec, "shop", "test")
    for victim in ("other-teams-database", "test-payments-api", "x-anything"):
        assert ownership.without_aws(ResourceType.LAMBDA, [victim], spec, "shop", "test", []) is None
    assert "has no {project} part, so a name proves nothing" in ownership.refusal("lambda", "v", spec, "ns/shop",
                                                                                    "shop", "test")


def test_from_another_namespace_only_its_own_deployments_registry_entries_count() -> None:
    """A tenant of a shared project: names, tags and other namespaces' entries prove nothing."""
    shared = [*_applied("team-a/web", _fn("acme-shop-core-test-web")),
              *_applied("team-b/db", _fn("acme-shop-core-test-db"))]
    mine = of_namespace(shared, "team-a")
    assert [e.deployment for e in mine] == ["team-a/web"]
    assert ownership.without_aws(ResourceType.LAMBDA, ["acme-shop-core-test-web"], PROJECT, "shop", "test", mine,
                                 same_namespace=False) is not None
    # team-b's function follows the pattern, but from team-a that proves nothing.
    assert ownership.without_aws(ResourceType.LAMBDA, ["acme-shop-core-test-db"], PROJECT, "shop", "test", mine,
                                 same_namespace=False) is None
    message = ownership.refusal("lambda", "acme-shop-core-test-db", PROJECT, "platform/shop", "shop", "test",
                                same_namespace=False)
    assert "only resources in the project's resource registry under this namespace's own" in message


def test_log_groups_are_owned_as_their_resources_are() -> None:
    mine = _applied("team-a/web", _fn("legacy-web"))
    owner = ownership.log_group_owner("/aws/lambda/legacy-web", PROJECT, "shop", "test", mine, same_namespace=False)
    assert owner is not None and "registry" in owner.how
    assert ownership.log_group_owner("/aws/lambda/acme-shop-core-test-db", PROJECT, "shop", "test", mine,
                                     same_namespace=False) is None
    assert ownership.log_group_owner("/aws/lambda/acme-shop-core-test-db", PROJECT, "shop", "test", mine) is not None
    assert ownership.log_group_owner("/aws/rds/instance/payments/postgresql", PROJECT, "shop", "test", mine) is None


def test_the_reader_takes_only_the_written_shape() -> None:
    assert entries("nonsense") == [] and entries({"resources": [1, "x", None]}) == []
    assert entries({"resources": {"k": {"type": "aws_lambda_function", "id": "no-deployment"}}}) == []


def test_only_a_configmap_the_operator_wrote_is_a_registry() -> None:
    owner = [{"apiVersion": "devops.fractary.io/v1alpha1", "kind": "DevOpsProject", "name": "shop", "uid": "u"}]
    labels = {REGISTRY_LABEL: "true", MANAGED_BY_LABEL: MANAGED_BY}
    assert written_by_operator({"metadata": {"labels": labels, "ownerReferences": owner}}, "shop")
    assert not written_by_operator({"metadata": {"labels": labels}}, "shop")  # a tenant's copy, no owner
    assert not written_by_operator({"metadata": {"ownerReferences": owner}}, "shop")
    assert not written_by_operator({"metadata": {"labels": labels, "ownerReferences": owner}}, "other")


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
