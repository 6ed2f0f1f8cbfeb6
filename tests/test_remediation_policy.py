"""A HealthCheck's remediation policy: the pure decision (verdicts, streaks, cooldown, daily cap counted
from the Remediation objects) and the hook creating owner-referenced Remediations after a real check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION, REQUESTED_AT_ANNOTATION, ResourceType
from devops_operator.api.healthcheck import RemediationPolicy, Verdict
from devops_operator.ops.remediation.policy import (
    HEALTH_CHECK_LABEL,
    TARGET_LABEL,
    Candidate,
    Existing,
    consecutive,
    decide,
)
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import create, create_function, minutes_ago, patch, put_metric, ready_project, resource_name
from test_remediation_actions import short

from support import get_custom, wait_until

NOW = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)


def candidate(name: str, verdict: Verdict = Verdict.UNHEALTHY, streak: int = 2,
              rtype: ResourceType = ResourceType.LAMBDA, cluster: str | None = None) -> Candidate:
    return Candidate(rtype, name, name, verdict, streak, cluster=cluster)


def policy(**fields: Any) -> RemediationPolicy:
    return RemediationPolicy.model_validate({"action": "restart", **fields})


def test_only_resources_bad_for_enough_checks_in_a_row_act() -> None:
    found = decide(policy(consecutiveChecks=2), [
        candidate("a", streak=2), candidate("b", streak=1), candidate("c", Verdict.DEGRADED, 5),
        candidate("d", Verdict.NO_DATA, 9), candidate("e", Verdict.NOT_FOUND, 9),
    ], [], NOW)
    assert [c.name for c in found.create] == ["a"]


def test_degraded_acts_when_the_policy_says_so_and_the_worst_come_first() -> None:
    found = decide(policy(onVerdict="DEGRADED", consecutiveChecks=1, maxPerDay=2),
                   [candidate("deg", Verdict.DEGRADED), candidate("bad"), candidate("worse", streak=4)], [], NOW)
    assert [c.name for c in found.create] == ["worse", "bad"]
    assert [s.resource for s in found.skipped] == ["deg"] and "maxPerDay: 2" in found.skipped[0].why


def test_the_cooldown_and_the_daily_cap_count_the_existing_objects() -> None:
    a, b, c = candidate("a"), candidate("b"), candidate("c")
    recent = Existing("hc-restart-1", a.key, NOW - timedelta(minutes=10))
    found = decide(policy(cooldown="30m", maxPerDay=2), [a, b, c], [recent], NOW)
    assert [x.name for x in found.create] == ["b"]
    assert {s.resource: s.why.split(":")[0] for s in found.skipped} == {"a": "cooldown", "c": "maxPerDay"}

    old = Existing("hc-restart-0", a.key, NOW - timedelta(hours=25))
    found = decide(policy(cooldown="30m", maxPerDay=1), [a], [old], NOW)
    assert [x.name for x in found.create] == ["a"]  # a day later: neither the cooldown nor the cap applies


def test_types_the_action_does_not_support_and_listed_resources() -> None:
    found = decide(policy(action="reboot"), [candidate("fn"), candidate("db", rtype=ResourceType.RDS)], [], NOW)
    assert [c.name for c in found.create] == ["db"] and not found.skipped
    found = decide(policy(resources=["db"]), [candidate("fn"), candidate("db", rtype=ResourceType.RDS)], [], NOW)
    assert found.create == [] and found.skipped[0].why == "action restart does not apply to rds"
    assert decide(policy(enabled=False), [candidate("fn")], [], NOW).create == []


def test_consecutive_counts_from_the_status_before_the_check() -> None:
    before = [{"name": "api", "verdict": "UNHEALTHY", "consecutive": 2}, {"name": "db", "verdict": "HEALTHY"}]
    assert consecutive(before, "api", Verdict.UNHEALTHY) == 3
    assert consecutive(before, "db", Verdict.UNHEALTHY) == 1
    assert consecutive(before, "new", Verdict.UNHEALTHY) == 1


# --- the hook after a real check --------------------------------------------------------------------------


def healthcheck(function: str, environment: str, **policy_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "HealthCheck", "metadata": {"name": "api-health"},
        "spec": {"projectRef": {"name": "shop"}, "environment": environment, "interval": "1h",
                 "targets": {"resources": [{"type": "lambda", "id": function, "name": "api"}]},
                 "remediationPolicy": {"action": "restart", "consecutiveChecks": 1, "cooldown": "1h",
                                       **policy_fields}},
    }


def failing(aws_url: str, function: str) -> None:
    dims = {"FunctionName": function}
    minutes = range(8, 0, -1)
    put_metric(aws_url, "AWS/Lambda", "Invocations", dims, [(minutes_ago(m), 100.0) for m in minutes])
    put_metric(aws_url, "AWS/Lambda", "Errors", dims, [(minutes_ago(m), 50.0) for m in minutes])


def created(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    listing = CustomObjectsApi(api).list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "remediations")
    return list(listing["items"])


def checked(api: ApiClient, namespace: str, request: str | None = None) -> dict[str, Any] | None:
    status = get_custom(api, "healthchecks", namespace, "api-health").get("status") or {}
    if request is not None and status.get("lastHandledRequest") != request:
        return None
    return status if status.get("verdict") == "UNHEALTHY" else None


@pytest.mark.parametrize(("environment", "dry_run", "expected"),
                         [("test", True, "Assessed"), ("prod", False, "AwaitingApproval")],
                         ids=["test-dry-run", "prod"])
def test_a_check_creates_one_owned_remediation_and_the_cooldown_holds(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str, environment: str, dry_run: bool,
    expected: str,
) -> None:
    function = resource_name(environment, f"api-{short(namespace)}")
    create_function(aws_url, function)
    failing(aws_url, function)
    ready_project(kube_api, namespace)
    owner = create(kube_api, namespace, "healthchecks", healthcheck(function, environment, dryRun=dry_run))

    wait_until(lambda: checked(kube_api, namespace), timeout=30, what="an UNHEALTHY check")
    [made] = wait_until(lambda: created(kube_api, namespace), timeout=30, what="a Remediation")
    meta, spec = made["metadata"], made["spec"]
    assert meta["labels"][HEALTH_CHECK_LABEL] == "api-health" and meta["labels"][TARGET_LABEL]
    assert meta["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    assert spec["target"] == {"type": "lambda", "id": function} and spec["action"] == "restart"
    assert spec["verification"]["healthCheckRef"] == {"name": "api-health"}
    assert spec["source"]["healthCheck"] == "api-health" and spec["source"]["verdict"] == "UNHEALTHY"
    assert spec["reason"].startswith("HealthCheck api-health saw UNHEALTHY for 1 check(s) in a row")

    def remediation_phase() -> str | None:
        return (get_custom(kube_api, "remediations", namespace, meta["name"]).get("status") or {}).get("phase")

    wait_until(lambda: remediation_phase() == expected, timeout=30, what=f"the Remediation {expected}")

    # Another check of the same bad resource within the cooldown creates nothing.
    patch(kube_api, namespace, "healthchecks", "api-health",
          {"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "again"}}})
    wait_until(lambda: checked(kube_api, namespace, "again"), timeout=30, what="the second check")
    assert len(created(kube_api, namespace)) == 1
