"""The runtime-operations kinds' models: HealthCheck, Remediation, Investigation, CostAudit.

For each kind: a realistic spec round-trips through the wire form unchanged, unknown fields and
invalid values are refused with an error naming the field, and defaults land.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from devops_operator.api import actions, costaudit, healthcheck, investigation, remediation
from devops_operator.api.actions import REGISTRY, RemediationAction, RemediationParameters, action_problems
from devops_operator.api.common import KindInfo, Model, ResourceType
from devops_operator.api.costaudit import CostAuditSpec, CostAuditStatus
from devops_operator.api.healthcheck import HealthCheckSpec, HealthCheckStatus
from devops_operator.api.investigation import InvestigationSpec, InvestigationStatus
from devops_operator.api.remediation import RemediationSpec, RemediationStatus

# --- helpers -------------------------------------------------------------------------------------------


def assert_round_trip(model: type[Model], wire: dict[str, Any]) -> Model:
    parsed = model.model_validate(wire)
    assert parsed.to_wire() == wire
    assert model.model_validate(parsed.to_wire()) == parsed
    return parsed


def refused(model: type[Model], wire: dict[str, Any], *fragments: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(wire)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    return info.value


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of base with the dotted path (list indexes as numbers) set to value."""
    wire = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = wire
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return wire


def without(base: dict[str, Any], path: str) -> dict[str, Any]:
    wire = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = wire
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return wire


def resolve_json_path(root: type[BaseModel], json_path: str) -> None:
    """Fail unless a printer column's `.spec.a.b` / `.status.a.b` path names fields of the models."""
    parts = json_path.lstrip(".").split(".")
    model: type[BaseModel] = root
    for i, part in enumerate(parts):
        by_alias = {(f.alias or name): f for name, f in model.model_fields.items()}
        assert part in by_alias, f"{json_path}: {part!r} is not a field of {model.__name__}"
        if i == len(parts) - 1:
            return
        annotation = by_alias[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        assert nested, f"{json_path}: {part!r} is not an object"
        model = nested[0]


# --- HealthCheck -------------------------------------------------------------------------------------

HEALTHCHECK_SPEC: dict[str, Any] = {
    "projectRef": {"name": "shop", "namespace": "platform"},
    "environment": "prod",
    "targets": {
        "resources": [
            {
                "type": "lambda",
                "id": "shop-api-prod-orders",
                "name": "orders",
                "region": "eu-west-1",
                "metrics": [
                    {
                        "name": "Duration",
                        "enabled": True,
                        "dimensions": {"Resource": "shop-api-prod-orders:live"},
                        "statistic": "p99",
                        "period": 60,
                        "unit": "Milliseconds",
                        "threshold": {"warning": 800.0, "critical": 2000.0},
                        "comparison": "GreaterThanThreshold",
                        "datapointsToBreach": 2,
                        "missingData": "not-breaching",
                    }
                ],
            },
            {"type": "ecs-service", "id": "checkout", "cluster": "shop-prod", "metrics": []},
            {"type": "rds", "id": "shop-prod-db", "metrics": []},
            {
                "type": "apigateway-http",
                "id": "a1b2c3d4e5",
                "name": "public-api",
                "stage": "$default",
                "metrics": [],
            },
        ],
    },
    "metrics": [
        {
            "type": "lambda",
            "includeDefaults": True,
            "metrics": [{"name": "Throttles", "enabled": False, "dimensions": {}}],
        },
        {
            "type": "rds",
            "includeDefaults": False,
            "metrics": [
                {
                    "name": "FreeStorageSpace",
                    "enabled": True,
                    "namespace": "AWS/RDS",
                    "dimensions": {},
                    "statistic": "Minimum",
                    "period": 300,
                    "unit": "Bytes",
                    "threshold": {"warning": 10e9, "critical": 2e9},
                    "comparison": "LessThanThreshold",
                },
                {"name": "DatabaseConnections", "enabled": True, "dimensions": {}, "statistic": "Maximum"},
            ],
        },
    ],
    "missingData": "no-data",
    "window": {"anchor": {"at": "2025-03-01T14:05:00Z", "before": "30m", "after": "15m"}},
    "slos": [
        {
            "name": "orders-latency",
            "target": "orders",
            "metric": "Duration",
            "objective": 99.5,
            "window": "30d",
            "goodCondition": {"comparison": "LessThanThreshold", "threshold": 1000.0},
        }
    ],
    "interval": "2m",
    "suspend": False,
    "historyLimit": 30,
    "performance": {"percentiles": ["p50", "p99"]},
    "remediationPolicy": {
        "enabled": True,
        "onVerdict": "UNHEALTHY",
        "consecutiveChecks": 3,
        "action": "restart",
        "parameters": {},
        "resources": ["orders", "checkout"],
        "maxPerDay": 2,
        "cooldown": "1h",
        "dryRun": False,
        "rollbackOnFailure": True,
    },
}

MINIMAL_HEALTHCHECK: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "test",
    "targets": {"deploymentRef": {"name": "shop-api"}},
}


class TestHealthCheck:
    def test_realistic_spec_round_trips(self) -> None:
        spec = assert_round_trip(HealthCheckSpec, HEALTHCHECK_SPEC)
        assert isinstance(spec, HealthCheckSpec)
        assert spec.targets.resources[1].cluster == "shop-prod"
        assert spec.window.anchor is not None and spec.window.last_minutes is None

    def test_registry_and_tag_targets_round_trip(self) -> None:
        registry = changed(
            MINIMAL_HEALTHCHECK,
            "targets",
            {"deploymentRef": {"name": "shop-api", "resourceTypes": ["lambda"]}},
        )
        parsed = HealthCheckSpec.model_validate(registry)
        assert parsed.to_wire()["targets"] == {
            "deploymentRef": {"name": "shop-api", "resourceTypes": ["lambda"]},
            "resources": [],
        }
        tags = changed(
            MINIMAL_HEALTHCHECK,
            "targets",
            {"tagSelector": {"tags": {"project": "shop", "environment": "test"}, "resourceTypes": []}},
        )
        parsed = HealthCheckSpec.model_validate(tags)
        assert parsed.targets.tag_selector is not None
        assert parsed.targets.tag_selector.tags == {"project": "shop", "environment": "test"}

    def test_defaults_land(self) -> None:
        spec = HealthCheckSpec.model_validate(MINIMAL_HEALTHCHECK)
        assert spec.interval == "5m"
        assert spec.missing_data == "no-data"
        assert spec.window.last_minutes == 5
        assert spec.window.anchor is None
        assert spec.history_limit == 20
        assert spec.suspend is False
        assert spec.slos == [] and spec.metrics == []
        assert spec.remediation_policy is None
        wire = spec.to_wire()
        assert wire["window"] == {"lastMinutes": 5}
        assert wire["missingData"] == "no-data"

        anchored = HealthCheckSpec.model_validate(
            changed(MINIMAL_HEALTHCHECK, "window", {"anchor": {"at": "2025-03-01T14:05:00+02:00"}})
        )
        assert anchored.window.anchor is not None
        assert (anchored.window.anchor.before, anchored.window.anchor.after) == ("15m", "15m")
        assert anchored.window.last_minutes is None

        policy = HealthCheckSpec.model_validate(
            changed(MINIMAL_HEALTHCHECK, "remediationPolicy", {"action": "restart"})
        ).remediation_policy
        assert policy is not None
        assert policy.enabled is True
        assert policy.on_verdict == "UNHEALTHY"
        assert (policy.consecutive_checks, policy.max_per_day, policy.cooldown) == (2, 3, "30m")
        assert policy.rollback_on_failure is True and policy.dry_run is False

        metric = HealthCheckSpec.model_validate(HEALTHCHECK_SPEC).metrics[0].metrics[0]
        assert metric.statistic is None and metric.period is None and metric.missing_data is None

    @pytest.mark.parametrize(
        ("path", "value", "fragment"),
        [
            ("intervall", "5m", "intervall"),
            ("targets.resources.0.tags", {"a": "b"}, "targets.resources.0.tags"),
            ("window.anchor.timezone", "UTC", "window.anchor.timezone"),
            ("remediationPolicy.force", True, "remediationPolicy.force"),
            ("slos.0.budget", 1, "slos.0.budget"),
        ],
    )
    def test_unknown_fields_refused(self, path: str, value: Any, fragment: str) -> None:
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, path, value),
            fragment,
            "Extra inputs are not permitted",
        )

    @pytest.mark.parametrize(
        ("path", "value", "fragments"),
        [
            ("interval", "5 minutes", ("interval", "pattern")),
            ("interval", "", ("interval",)),
            ("slos.0.window", "a month", ("slos.0.window",)),
            ("remediationPolicy.cooldown", "1 hour", ("remediationPolicy.cooldown",)),
            ("window.anchor.before", "-5m", ("window.anchor.before",)),
            ("targets.resources.0.type", "ec2", ("targets.resources.0.type", "lambda")),
            ("metrics.0.type", "elasticache", ("metrics.0.type",)),
            ("targets.resources.0.metrics.0.statistic", "Median", ("statistic",)),
            ("targets.resources.0.metrics.0.comparison", "Above", ("comparison",)),
            ("targets.resources.0.metrics.0.unit", "Furlongs", ("unit",)),
            ("targets.resources.0.metrics.0.period", 45, ("period", "multiple of 60")),
            ("targets.resources.0.metrics.0.period", 0, ("period",)),
            ("targets.resources.0.metrics.0.datapointsToBreach", 0, ("datapointsToBreach",)),
            ("targets.resources.0.region", "Europe", ("targets.resources.0.region",)),
            ("missingData", "treat-as-ok", ("missingData",)),
            ("slos.0.objective", 100.5, ("slos.0.objective",)),
            ("slos.0.objective", 100, ("slos.0.objective",)),
            ("slos.0.objective", 0, ("slos.0.objective",)),
            ("slos.0.name", "Orders Latency", ("slos.0.name",)),
            ("historyLimit", 1000, ("historyLimit",)),
            ("window.anchor.at", "2025-03-01 14:05", ("window.anchor.at",)),
            ("window.anchor.at", "2025-13-01T14:05:00Z", ("window.anchor.at", "RFC 3339")),
            ("window.anchor.at", "2025-03-01T14:05:00", ("window.anchor.at",)),
            ("environment", "Prod", ("environment",)),
            ("remediationPolicy.action", "terminate", ("remediationPolicy.action", "restart")),
            ("remediationPolicy.onVerdict", "NO_DATA", ("remediationPolicy.onVerdict",)),
            ("remediationPolicy.maxPerDay", 0, ("remediationPolicy.maxPerDay",)),
        ],
    )
    def test_invalid_values_refused(self, path: str, value: Any, fragments: tuple[str, ...]) -> None:
        refused(HealthCheckSpec, changed(HEALTHCHECK_SPEC, path, value), *fragments)

    def test_both_window_forms_refused(self) -> None:
        both = changed(
            HEALTHCHECK_SPEC, "window", {"lastMinutes": 10, "anchor": {"at": "2025-03-01T14:05:00Z"}}
        )
        error = refused(HealthCheckSpec, both, "window", "lastMinutes", "anchor", "not both")
        assert error.errors()[0]["loc"] == ("window",)

    @pytest.mark.parametrize(
        ("targets", "fragment"),
        [
            ({}, "found: none"),
            ({"resources": []}, "found: none"),
            (
                {"deploymentRef": {"name": "shop-api"}, "tagSelector": {"tags": {"project": "shop"}}},
                "found: deploymentRef, tagSelector",
            ),
            ({"tagSelector": {"tags": {}}}, "targets.tagSelector.tags"),
        ],
    )
    def test_targets_must_be_exactly_one_form(self, targets: dict[str, Any], fragment: str) -> None:
        refused(HealthCheckSpec, changed(MINIMAL_HEALTHCHECK, "targets", targets), "targets", fragment)

    def test_target_shape_rules(self) -> None:
        no_cluster = without(HEALTHCHECK_SPEC, "targets.resources.1.cluster")
        refused(HealthCheckSpec, no_cluster, "targets.resources.1", "cluster is required")
        cluster_on_lambda = changed(HEALTHCHECK_SPEC, "targets.resources.0.cluster", "shop-prod")
        refused(HealthCheckSpec, cluster_on_lambda, "cluster applies only to ecs-service")
        stage_on_rds = changed(HEALTHCHECK_SPEC, "targets.resources.2.stage", "prod")
        refused(HealthCheckSpec, stage_on_rds, "stage applies only to apigateway")
        twice = changed(
            HEALTHCHECK_SPEC,
            "targets.resources.3",
            {"type": "rds", "id": "shop-prod-db", "metrics": []},
        )
        refused(HealthCheckSpec, twice, "listed twice")

    def test_threshold_order_follows_comparison(self) -> None:
        path = "targets.resources.0.metrics.0.threshold"
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, path, {"warning": 3000.0, "critical": 2000.0}),
            "threshold",
            "must not exceed critical",
        )
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, "metrics.1.metrics.0.threshold", {"warning": 1e9, "critical": 2e9}),
            "threshold",
            "must not be below critical",
        )

    def test_references_and_uniqueness(self) -> None:
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, "slos.0.target", "payments"),
            "slos[orders-latency].target",
        )
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, "slos", [HEALTHCHECK_SPEC["slos"][0], HEALTHCHECK_SPEC["slos"][0]]),
            "slos: names must be unique",
        )
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, "metrics.1.type", "lambda"),
            "metrics: one entry per type",
            "lambda",
        )
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, "metrics.1.metrics.1.name", "FreeStorageSpace"),
            "metric names must be unique",
        )
        refused(
            HealthCheckSpec,
            changed(HEALTHCHECK_SPEC, "remediationPolicy.resources", ["payments"]),
            "remediationPolicy.resources",
        )

    def test_policy_action_rules(self) -> None:
        reboot_lambda = changed(HEALTHCHECK_SPEC, "remediationPolicy.action", "reboot")
        refused(
            HealthCheckSpec,
            reboot_lambda,
            "remediationPolicy (orders)",
            "does not apply to resource type lambda",
        )
        scale_without = changed(HEALTHCHECK_SPEC, "remediationPolicy.action", "scale")
        refused(HealthCheckSpec, scale_without, "parameters.desiredCount or parameters.reservedConcurrency")
        restart_with_count = changed(HEALTHCHECK_SPEC, "remediationPolicy.parameters", {"desiredCount": 4})
        refused(
            HealthCheckSpec, restart_with_count, "parameters.desiredCount does not apply to action restart"
        )
        scale_ecs = changed(
            changed(HEALTHCHECK_SPEC, "remediationPolicy.action", "scale"),
            "remediationPolicy.parameters",
            {"desiredCount": 4},
        )
        scale_ecs = changed(scale_ecs, "remediationPolicy.resources", ["checkout"])
        policy = HealthCheckSpec.model_validate(scale_ecs).remediation_policy
        assert policy is not None and policy.parameters.desired_count == 4

    def test_status_round_trips(self) -> None:
        status = {
            "observedGeneration": 3,
            "phase": "Ready",
            "message": "1 of 4 resources DEGRADED",
            "resourcesTruncated": False,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Checked",
                    "message": "DEGRADED",
                    "lastTransitionTime": "2025-03-01T14:10:00Z",
                    "observedGeneration": 3,
                }
            ],
            "verdict": "DEGRADED",
            "counts": {"total": 4, "healthy": 3, "degraded": 1, "unhealthy": 0, "noData": 0, "notFound": 0},
            "resources": [
                {
                    "id": "shop-api-prod-orders",
                    "name": "orders",
                    "type": "lambda",
                    "region": "eu-west-1",
                    "verdict": "DEGRADED",
                    "reasons": ["ErrorRate 3.2 % >= warning 1 %"],
                    "metrics": [
                        {
                            "name": "ErrorRate",
                            "verdict": "DEGRADED",
                            "value": 3.2,
                            "threshold": 1.0,
                            "comparison": "GreaterThanOrEqualToThreshold",
                            "unit": "Percent",
                            "statistic": "Sum",
                            "datapoints": 5,
                        },
                        {"name": "Throttles", "verdict": "NO_DATA", "datapoints": 0},
                    ],
                    "since": "2025-03-01T14:08:00Z",
                    "consecutive": 2,
                }
            ],
            "slos": [
                {
                    "name": "orders-latency",
                    "target": "orders",
                    "objective": 99.5,
                    "sli": 99.1,
                    "errorBudgetRemaining": -80.0,
                    "burnRate": 1.8,
                    "burnRates": [{"window": "5m", "burnRate": 0.0}, {"window": "1h", "burnRate": 1.8}],
                    "alert": "ticket",
                    "window": "30d",
                    "period": 300,
                    "goodDatapoints": 42800,
                    "totalDatapoints": 43200,
                }
            ],
            "targets": {"source": "deploymentRef", "resolved": 4, "skipped": 2, "skippedTypes": ["aws_iam_role"],
                        "skippedTypesTruncated": False},
            "report": "orders-health-report",
            "apiCalls": {
                "getMetricData": 1,
                "total": 1,
                "retries": 0,
                "metricsRequested": 16,
                "estimatedCostUsd": 0.00016,
                "cpuSeconds": 0.012,
                "durationSeconds": 0.4,
            },
            "lastCheck": "2025-03-01T14:10:00Z",
            "nextCheck": "2025-03-01T14:12:00Z",
            "lastHandledRequest": "2025-03-01T14:09:30Z",
            "history": [{"at": "2025-03-01T14:10:00Z", "verdict": "DEGRADED", "unhealthy": 0, "degraded": 1}],
            "remediations": [
                {
                    "name": "orders-restart-1",
                    "resource": "orders",
                    "action": "restart",
                    "at": "2025-03-01T14:10:01Z",
                }
            ],
        }
        assert_round_trip(HealthCheckStatus, status)
        refused(HealthCheckStatus, changed(status, "verdict", "OK"), "verdict")
        refused(
            HealthCheckStatus,
            changed(status, "history", [{"at": "x", "verdict": "HEALTHY"}] * 101),
            "history",
        )


# --- Remediation -------------------------------------------------------------------------------------

REMEDIATION_SPEC: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "prod",
    "target": {"type": "ecs-service", "id": "checkout", "cluster": "shop-prod", "region": "eu-west-1"},
    "action": "scale",
    "parameters": {"desiredCount": 6},
    "reason": "p99 latency above 2 s since 14:05 with CPU at 95 %",
    "dryRun": False,
    "approval": {
        "required": False,
        "approved": True,
        "assessmentDigest": "3f2a9c0d41b7e8aa",
        "approvedBy": "alice@example.com",
    },
    "verification": {
        "enabled": True,
        "healthCheckRef": {"name": "shop-prod"},
        "delay": "2m",
        "timeout": "15m",
        "acceptDegraded": False,
        "rollbackOnFailure": True,
    },
    "source": {"healthCheck": "shop-prod", "verdict": "UNHEALTHY", "detectedAt": "2025-03-01T14:07:00Z"},
}

LAMBDA_ROLLBACK: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "prod",
    "target": {"type": "lambda", "id": "shop-api-prod-orders", "alias": "live"},
    "action": "rollback",
    "parameters": {"targetVersion": "41"},
    "reason": "errors since version 42 went live",
}


class TestRemediation:
    def test_realistic_spec_round_trips(self) -> None:
        assert_round_trip(RemediationSpec, REMEDIATION_SPEC)

    def test_each_supported_action_parses(self) -> None:
        for spec in REGISTRY:
            for rtype in spec.resource_types:
                target: dict[str, Any] = {"type": rtype, "id": "x"}
                if rtype == ResourceType.ECS_SERVICE:
                    target["cluster"] = "c"
                if rtype == ResourceType.LAMBDA:
                    target["alias"] = "live"
                required = [p for p in spec.parameters_for(rtype) if p.required]
                wire = {
                    **LAMBDA_ROLLBACK,
                    "target": target,
                    "action": spec.name,
                    "parameters": {p.wire_name: 2 for p in required},
                }
                assert RemediationSpec.model_validate(wire).action == spec.name

    def test_defaults_land(self) -> None:
        spec = RemediationSpec.model_validate(
            {
                "projectRef": {"name": "shop"},
                "environment": "test",
                "target": {"type": "lambda", "id": "orders"},
                "action": "restart",
                "reason": "connection pool exhausted",
            }
        )
        assert spec.dry_run is False
        assert spec.parameters == RemediationParameters()
        assert spec.approval.approved is False and spec.approval.required is False
        assert spec.approval.assessment_digest is None
        assert spec.verification.enabled is True
        assert spec.verification.rollback_on_failure is True
        assert (spec.verification.delay, spec.verification.timeout) == ("1m", "10m")
        assert spec.verification.health_check_ref is None
        assert spec.source is None
        assert spec.to_wire()["approval"] == {"required": False, "approved": False}

    @pytest.mark.parametrize(
        ("path", "value", "fragment"),
        [
            ("force", True, "force"),
            ("target.arn", "arn:aws:ecs:eu-west-1:123456789012:service/shop-prod/checkout", "target.arn"),
            ("approval.approvedAt", "2025-03-01T14:08:00Z", "approval.approvedAt"),
            ("verification.retries", 3, "verification.retries"),
            ("parameters.minCount", 1, "parameters.minCount"),
        ],
    )
    def test_unknown_fields_refused(self, path: str, value: Any, fragment: str) -> None:
        refused(
            RemediationSpec,
            changed(REMEDIATION_SPEC, path, value),
            fragment,
            "Extra inputs are not permitted",
        )

    @pytest.mark.parametrize(
        ("path", "value", "fragments"),
        [
            ("action", "terminate", ("action", "restart")),
            ("target.type", "ec2", ("target.type",)),
            ("verification.timeout", "10 minutes", ("verification.timeout",)),
            ("verification.delay", "soon", ("verification.delay",)),
            ("parameters.desiredCount", -1, ("parameters.desiredCount",)),
            ("parameters.desiredCount", 10000, ("parameters.desiredCount",)),
            ("approval.assessmentDigest", "not-a-digest", ("approval.assessmentDigest",)),
            ("reason", "", ("reason",)),
            ("source.detectedAt", "yesterday", ("source.detectedAt",)),
            ("source.verdict", "BROKEN", ("source.verdict",)),
        ],
    )
    def test_invalid_values_refused(self, path: str, value: Any, fragments: tuple[str, ...]) -> None:
        refused(RemediationSpec, changed(REMEDIATION_SPEC, path, value), *fragments)

    def test_reason_is_required(self) -> None:
        refused(RemediationSpec, without(REMEDIATION_SPEC, "reason"), "reason", "Field required")

    def test_approval_is_bound_to_an_assessment(self) -> None:
        unbound = without(REMEDIATION_SPEC, "approval.assessmentDigest")
        refused(RemediationSpec, unbound, "approval", "assessmentDigest is required")

    def test_action_and_target_must_agree(self) -> None:
        refused(
            RemediationSpec, changed(REMEDIATION_SPEC, "action", "reboot"), "does not apply to resource type"
        )
        refused(
            RemediationSpec,
            changed(REMEDIATION_SPEC, "parameters", {"reservedConcurrency": 5}),
            "parameters.reservedConcurrency applies to lambda, not ecs-service",
            "needs parameters.desiredCount",
        )
        refused(
            RemediationSpec,
            changed(REMEDIATION_SPEC, "action", "restart"),
            "parameters.desiredCount does not apply to action restart",
        )
        refused(RemediationSpec, without(LAMBDA_ROLLBACK, "target.alias"), "needs target.alias")
        refused(
            RemediationSpec,
            changed(LAMBDA_ROLLBACK, "parameters", {"targetVersion": "$LATEST"}),
            "targetVersion",
        )
        refused(RemediationSpec, without(REMEDIATION_SPEC, "target.cluster"), "target.cluster is required")
        refused(
            RemediationSpec, changed(REMEDIATION_SPEC, "target.alias", "live"), "target.alias applies only"
        )
        refused(RemediationSpec, changed(LAMBDA_ROLLBACK, "target.alias", "42"), "target.alias")

    def test_action_problems_without_a_type(self) -> None:
        assert action_problems("restart", RemediationParameters()) == []
        assert action_problems("reboot", RemediationParameters(force_failover=True)) == []
        assert action_problems("reboot", RemediationParameters(force_failover=True), "rds") == []
        assert action_problems("scale", RemediationParameters(desired_count=3, reserved_concurrency=10)) == []
        problems = action_problems("rollback", RemediationParameters(desired_count=1), "lambda")
        assert problems == ["parameters.desiredCount does not apply to action rollback"]

    def test_status_round_trips(self) -> None:
        status = {
            "phase": "RolledBack",
            "conditions": [],
            "impact": {
                "summary": "scale ecs-service checkout from 3 to 6 tasks",
                "changes": [{"attribute": "desiredCount", "current": "3", "proposed": "6"}],
                "expectedInterruption": "none: new tasks join behind the load balancer",
                "interruptionLevel": "none",
                "currentState": {"desiredCount": "3", "runningCount": "3", "taskDefinition": "checkout:17"},
                "reversible": True,
                "production": True,
                "approvalRequired": True,
                "digest": "3f2a9c0d41b7e8aa",
                "assessedAt": "2025-03-01T14:07:30Z",
            },
            "actionResult": {
                "intent": "5d41402abc4b2a76",
                "request": {"desiredCount": "6"},
                "startedAt": "2025-03-01T14:08:10Z",
                "completedAt": "2025-03-01T14:08:11Z",
                "succeeded": True,
                "message": "desired count set to 6",
                "details": {"deploymentId": "ecs-svc/123"},
                "previousState": {"desiredCount": "3"},
            },
            "verification": {
                "startedAt": "2025-03-01T14:10:11Z",
                "completedAt": "2025-03-01T14:23:11Z",
                "verdict": "UNHEALTHY",
                "passed": False,
                "checks": 7,
                "reasons": ["CPUUtilization 97 % > critical 90 %"],
                "message": "still UNHEALTHY after 15m",
            },
            "rollback": {
                "attempted": True,
                "action": "scale",
                "intent": "5d41402abc4b2a76-rollback",
                "request": {"desiredCount": "3"},
                "at": "2025-03-01T14:23:12Z",
                "succeeded": True,
                "restored": {"desiredCount": "3"},
                "message": "desired count restored to 3",
            },
            "approval": {"state": "Approved", "digest": "9f8e7d6c5b4a", "approvedBy": "alice@example.com",
                         "approvedAt": "2025-03-01T14:08:00Z"},
            "logConfigMap": "shop-prod-remediation-log",
        }
        assert_round_trip(RemediationStatus, status)
        refused(RemediationStatus, changed(status, "phase", "Done"), "phase")


# --- Investigation -----------------------------------------------------------------------------------

INVESTIGATION_SPEC: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "prod",
    "service": "shop-api-prod-orders",
    "logGroups": [],
    "timeframe": {"start": "2025-03-01T13:30:00Z", "end": "2025-03-01T15:00:00+01:00"},
    "filterPattern": '?ERROR ?Exception ?"connection timeout"',
    "mode": "investigate",
    "useInsights": True,
    "insightsQuery": "fields @timestamp, @message | filter @message like /timeout/ | limit 500",
    "maxEvents": 5000,
    "maxPatterns": 15,
    "includeMetrics": True,
    "includeDeployments": False,
}

MINIMAL_INVESTIGATION: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "test",
    "logGroups": ["/aws/lambda/shop-api-test-orders", "/ecs/shop-test/checkout"],
}


class TestInvestigation:
    def test_realistic_spec_round_trips(self) -> None:
        assert_round_trip(InvestigationSpec, INVESTIGATION_SPEC)
        query = {
            **MINIMAL_INVESTIGATION,
            "region": "eu-west-1",
            "timeframe": {"anchor": {"at": "2025-03-01T14:05:00Z", "before": "1h", "after": "10m"}},
            "filterPattern": "Database connection timeout",
            "mode": "query",
            "useInsights": False,
            "maxEvents": 200,
            "maxPatterns": 10,
            "includeMetrics": False,
            "includeDeployments": True,
        }
        assert_round_trip(InvestigationSpec, query)

    def test_defaults_land(self) -> None:
        spec = InvestigationSpec.model_validate(MINIMAL_INVESTIGATION)
        assert spec.timeframe.last_minutes == 60
        assert spec.timeframe.start is None and spec.timeframe.anchor is None
        assert spec.mode == "investigate"
        assert spec.use_insights is False and spec.insights_query is None
        assert spec.filter_pattern is None
        assert (spec.max_events, spec.max_patterns) == (1000, 10)
        assert spec.include_metrics is True and spec.include_deployments is True
        assert spec.to_wire()["timeframe"] == {"lastMinutes": 60}
        open_ended = InvestigationSpec.model_validate(
            {**MINIMAL_INVESTIGATION, "timeframe": {"start": "2025-03-01T13:30:00Z"}}
        )
        assert open_ended.timeframe.end is None and open_ended.timeframe.last_minutes is None

    @pytest.mark.parametrize(
        ("path", "value", "fragment"),
        [
            ("services", ["orders"], "services"),
            ("timeframe.duration", "1h", "timeframe.duration"),
            ("limit", 10, "limit"),
        ],
    )
    def test_unknown_fields_refused(self, path: str, value: Any, fragment: str) -> None:
        refused(
            InvestigationSpec,
            changed(INVESTIGATION_SPEC, path, value),
            fragment,
            "Extra inputs are not permitted",
        )

    @pytest.mark.parametrize(
        ("path", "value", "fragments"),
        [
            ("mode", "analyze", ("mode", "investigate")),
            ("maxEvents", 0, ("maxEvents",)),
            ("maxEvents", 20000, ("maxEvents",)),
            ("maxPatterns", 100, ("maxPatterns",)),
            ("timeframe.start", "13:30", ("timeframe.start",)),
            ("timeframe.end", "2025-02-30T00:00:00Z", ("timeframe.end", "RFC 3339")),
            ("filterPattern", "x" * 2000, ("filterPattern",)),
            ("region", "mars-1", ("region",)),
            ("service", "", ("service",)),
        ],
    )
    def test_invalid_values_refused(self, path: str, value: Any, fragments: tuple[str, ...]) -> None:
        refused(InvestigationSpec, changed(INVESTIGATION_SPEC, path, value), *fragments)

    def test_bad_log_group_name_refused(self) -> None:
        refused(
            InvestigationSpec, changed(MINIMAL_INVESTIGATION, "logGroups.1", "my log group"), "logGroups.1"
        )
        refused(InvestigationSpec, changed(MINIMAL_INVESTIGATION, "logGroups.1", ""), "logGroups.1")
        duplicate = changed(MINIMAL_INVESTIGATION, "logGroups.1", MINIMAL_INVESTIGATION["logGroups"][0])
        refused(InvestigationSpec, duplicate, "logGroups", "listed twice")

    def test_service_or_log_groups(self) -> None:
        refused(
            InvestigationSpec,
            changed(INVESTIGATION_SPEC, "logGroups", ["/aws/lambda/x"]),
            "exactly one of service and logGroups",
        )
        refused(
            InvestigationSpec, without(INVESTIGATION_SPEC, "service"), "exactly one of service and logGroups"
        )

    @pytest.mark.parametrize(
        ("timeframe", "fragment"),
        [
            ({"lastMinutes": 30, "anchor": {"at": "2025-03-01T14:05:00Z"}}, "found: lastMinutes, anchor"),
            ({"lastMinutes": 30, "start": "2025-03-01T13:00:00Z"}, "found: lastMinutes, start/end"),
            ({"end": "2025-03-01T13:00:00Z"}, "timeframe.end needs timeframe.start"),
            ({"start": "2025-03-01T14:00:00Z", "end": "2025-03-01T14:00:00+01:00"}, "must be after"),
            ({"lastMinutes": 0}, "timeframe.lastMinutes"),
        ],
    )
    def test_one_timeframe_form(self, timeframe: dict[str, Any], fragment: str) -> None:
        refused(InvestigationSpec, changed(INVESTIGATION_SPEC, "timeframe", timeframe), "timeframe", fragment)

    def test_insights_query_needs_insights(self) -> None:
        refused(
            InvestigationSpec,
            changed(INVESTIGATION_SPEC, "useInsights", False),
            "insightsQuery needs useInsights",
        )

    def test_status_round_trips(self) -> None:
        status = {
            "phase": "Completed",
            "conditions": [],
            "logGroups": ["/aws/lambda/shop-api-prod-orders"],
            "windowStart": "2025-03-01T13:30:00Z",
            "windowEnd": "2025-03-01T14:00:00Z",
            "matchCount": 412,
            "truncated": False,
            "patternsTruncated": False,
            "patterns": [
                {
                    "signature": "Database connection timeout after <N> ms (host <HOST>)",
                    "count": 398,
                    "firstSeen": "2025-03-01T13:41:07Z",
                    "lastSeen": "2025-03-01T13:59:58Z",
                    "example": "ERROR Database connection timeout after 5000 ms (host db-1.internal)",
                    "logGroup": "/aws/lambda/shop-api-prod-orders",
                }
            ],
            "timeline": {
                "total": 5,
                "logPatterns": 2,
                "metricAnomalies": 2,
                "deployments": 1,
                "remediations": 0,
            },
            "probableCause": {
                "summary": "Database connection timeouts after the 13:40 deployment",
                "confidence": "high",
                "signature": "Database connection timeout after <N> ms (host <HOST>)",
                "evidence": [
                    "398 of 412 errors share one pattern",
                    "RDS DatabaseConnections at max from 13:41",
                ],
            },
            "recommendations": ["Raise the RDS connection limit or add RDS Proxy", "Restart the function"],
            "reportConfigMap": "inv-orders-report",
            "apiCalls": {
                "filterLogEvents": 3,
                "startQuery": 1,
                "getQueryResults": 4,
                "getMetricData": 1,
                "describe": 2,
                "total": 11,
                "throttled": 0,
                "bytesScanned": 1048576,
                "estimatedCostUsd": 0.0001,
            },
            "startedAt": "2025-03-01T14:01:00Z",
            "completedAt": "2025-03-01T14:01:04Z",
        }
        assert_round_trip(InvestigationStatus, status)
        refused(InvestigationStatus, changed(status, "probableCause.confidence", "certain"), "confidence")


# --- CostAudit ---------------------------------------------------------------------------------------

COSTAUDIT_SPEC: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "prod",
    "period": {"start": "2025-02-01", "end": "2025-03-01"},
    "schedule": "0 6 * * 1",
    "timeZone": "Europe/Paris",
    "suspend": False,
    "checks": {
        "cost": True,
        "rightsizing": True,
        "graviton": False,
        "s3Tiering": True,
        "idle": True,
        "security": True,
        "compliance": False,
    },
    "environmentTagKey": "Environment",
    "thresholds": {
        "cpuUtilizationPercent": 30.0,
        "memoryUtilizationPercent": 35.0,
        "lambdaMemoryUtilizationPercent": 50.0,
        "lookbackDays": 30,
        "s3TieringMinSizeGib": 500.0,
        "minMonthlySavings": 5.0,
    },
    "sensitivePorts": [22, 3306, 5432],
    "requiredTags": ["project", "environment", "team"],
    "cacheTtl": "12h",
    "costExplorerRequestLimit": 10,
    "topDrivers": 8,
    "historyLimit": 5,
}

MINIMAL_COSTAUDIT: dict[str, Any] = {"projectRef": {"name": "shop"}, "environment": "test"}


class TestCostAudit:
    def test_realistic_spec_round_trips(self) -> None:
        assert_round_trip(CostAuditSpec, COSTAUDIT_SPEC)
        assert_round_trip(CostAuditSpec, changed(COSTAUDIT_SPEC, "schedule", "@weekly"))
        assert_round_trip(CostAuditSpec, changed(COSTAUDIT_SPEC, "period", {"lastDays": 7}))

    def test_defaults_land(self) -> None:
        spec = CostAuditSpec.model_validate(MINIMAL_COSTAUDIT)
        assert spec.period.last_days == 30 and spec.period.start is None
        assert spec.schedule is None and spec.time_zone == "UTC" and spec.suspend is False
        assert all(spec.checks.model_dump().values())
        assert spec.environment_tag_key == "environment"
        assert spec.thresholds.cpu_utilization_percent == 40
        assert spec.thresholds.lookback_days == 14
        assert spec.cache_ttl == "6h"
        assert spec.cost_explorer_request_limit == 20
        assert 22 in spec.sensitive_ports and 3389 in spec.sensitive_ports
        assert spec.required_tags == []
        wire = spec.to_wire()
        assert wire["period"] == {"lastDays": 30}
        assert wire["checks"]["s3Tiering"] is True

    @pytest.mark.parametrize(
        ("path", "value", "fragment"),
        [
            ("checks.ec2", True, "checks.ec2"),
            ("thresholds.gpuUtilizationPercent", 10, "thresholds.gpuUtilizationPercent"),
            ("period.months", 1, "period.months"),
            ("currency", "EUR", "currency"),
        ],
    )
    def test_unknown_fields_refused(self, path: str, value: Any, fragment: str) -> None:
        refused(
            CostAuditSpec, changed(COSTAUDIT_SPEC, path, value), fragment, "Extra inputs are not permitted"
        )

    @pytest.mark.parametrize(
        ("path", "value", "fragments"),
        [
            ("cacheTtl", "6 hours", ("cacheTtl",)),
            ("schedule", "every monday", ("schedule",)),
            ("schedule", "0 6 * *", ("schedule",)),
            ("thresholds.cpuUtilizationPercent", 120, ("thresholds.cpuUtilizationPercent",)),
            ("thresholds.cpuUtilizationPercent", 0, ("thresholds.cpuUtilizationPercent",)),
            ("thresholds.lookbackDays", 400, ("thresholds.lookbackDays",)),
            ("thresholds.minMonthlySavings", -1, ("thresholds.minMonthlySavings",)),
            ("period.start", "2025-02-30", ("period.start", "not a valid date")),
            ("period.end", "March", ("period.end",)),
            ("sensitivePorts", [22, 70000], ("sensitivePorts.1",)),
            ("environmentTagKey", "", ("environmentTagKey",)),
            ("costExplorerRequestLimit", 0, ("costExplorerRequestLimit",)),
            ("checks.cost", "yes please", ("checks.cost",)),
        ],
    )
    def test_invalid_values_refused(self, path: str, value: Any, fragments: tuple[str, ...]) -> None:
        refused(CostAuditSpec, changed(COSTAUDIT_SPEC, path, value), *fragments)

    @pytest.mark.parametrize(
        ("period", "fragment"),
        [
            ({"lastDays": 30, "start": "2025-02-01", "end": "2025-03-01"}, "either lastDays or start/end"),
            ({"start": "2025-02-01"}, "start and end go together"),
            ({"end": "2025-03-01"}, "start and end go together"),
            ({"start": "2025-03-01", "end": "2025-03-01"}, "must be after"),
            ({"lastDays": 0}, "period.lastDays"),
        ],
    )
    def test_one_period_form(self, period: dict[str, Any], fragment: str) -> None:
        refused(CostAuditSpec, changed(COSTAUDIT_SPEC, "period", period), "period", fragment)

    def test_status_round_trips(self) -> None:
        status = {
            "phase": "Completed",
            "conditions": [],
            "totals": {
                "cost": 1234.56,
                "previousPeriodCost": 1100.0,
                "trendPercent": 12.23,
                "currency": "USD",
                "periodStart": "2025-02-01",
                "periodEnd": "2025-03-01",
            },
            "topDrivers": [
                {"service": "Amazon Relational Database Service", "cost": 612.3, "sharePercent": 49.6},
                {"service": "AWS Lambda", "cost": 201.0, "sharePercent": 16.3},
            ],
            "recommendations": {"total": 4, "high": 1, "medium": 2, "low": 1, "totalMonthlySavings": 187.4},
            "findings": {"total": 3, "critical": 0, "high": 1, "medium": 2, "low": 0},
            "compliance": {
                "tagCoveragePercent": 87.5,
                "resourcesChecked": 48,
                "untaggedResources": 6,
                "requiredTags": ["project", "environment", "team", "cost-center"],
            },
            "costExplorerRequests": 2,
            "costExplorerCacheHits": 1,
            "costExplorerCostUsd": 0.02,
            "reportConfigMap": "audit-prod-20250303",
            "lastRun": "2025-03-03T06:00:41Z",
            "nextRun": "2025-03-10T06:00:00Z",
        }
        assert_round_trip(CostAuditStatus, status)
        refused(CostAuditStatus, changed(status, "compliance.tagCoveragePercent", 130), "tagCoveragePercent")


# --- the kinds -----------------------------------------------------------------------------------------

KINDS = [
    (healthcheck.KIND, "HealthCheck", "healthchecks", ["hc"],
     ["Env", "Verdict", "Resources", "Unhealthy", "Cost", "Last Check"]),
    (remediation.KIND, "Remediation", "remediations", ["rem"], ["Env", "Action", "Target", "Approved", "Digest",
                                                                            "Verdict"]),
    (investigation.KIND, "Investigation", "investigations", ["inv"], ["Env", "Service", "Matches", "Cause"]),
    (costaudit.KIND, "CostAudit", "costaudits", ["audit"], ["Env", "Cost", "Savings", "Findings"]),
]


@pytest.mark.parametrize(("kind", "name", "plural", "short_names", "columns"), KINDS)
def test_kind_info(
    kind: KindInfo, name: str, plural: str, short_names: list[str], columns: list[str]
) -> None:
    assert (kind.kind, kind.plural, kind.singular, kind.short_names) == (
        name,
        plural,
        name.lower(),
        short_names,
    )
    assert kind.crd_name == f"{plural}.devops.fractary.io"
    assert kind.description
    names = [c.name for c in kind.printer_columns]
    assert names[:2] == ["Ready", "Phase"] and names[-2:] == ["Message", "Age"]
    assert names[2:-2] == columns
    for column in kind.printer_columns[2:-2]:
        part, _, path = column.json_path.lstrip(".").partition(".")
        assert part in ("spec", "status"), column.json_path
        resolve_json_path(kind.spec if part == "spec" else kind.status, path)


def test_optional_columns() -> None:
    approved = next(c for c in remediation.KIND.printer_columns if c.name == "Approved")
    assert (approved.priority, approved.type) == (1, "boolean")
    cause = next(c for c in investigation.KIND.printer_columns if c.name == "Cause")
    assert cause.priority == 1


def _models_of(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    _models_of(inner, seen)
    return seen


@pytest.mark.parametrize("kind", [k[0] for k in KINDS], ids=[k[1] for k in KINDS])
def test_every_field_is_described(kind: KindInfo) -> None:
    models = _models_of(kind.spec, set()) | _models_of(kind.status, set())
    missing = [f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not f.description]
    assert missing == []


def test_shared_vocabulary_is_not_duplicated() -> None:
    assert remediation.ResourceType is healthcheck.ResourceType
    assert remediation.Verdict is healthcheck.Verdict
    assert remediation.RemediationAction is healthcheck.RemediationAction is actions.RemediationAction
    assert remediation.InterruptionLevel is actions.InterruptionLevel
    assert investigation.TimeAnchor is healthcheck.TimeAnchor
    assert costaudit.RunPhase is investigation.RunPhase
    assert [member.value for member in RemediationAction] == [spec.name for spec in REGISTRY]
