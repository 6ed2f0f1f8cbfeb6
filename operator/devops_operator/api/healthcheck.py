"""HealthCheck: periodic health of a set of AWS resources, judged from CloudWatch metrics.

This module also owns the vocabulary the runtime-operations kinds share, so that the others
import it instead of repeating it: the health verdicts, the time types and the anchored time
window. The resource types and environment names are in `common`; the remediation actions and
their parameters (a HealthCheck's remediation policy names them, and so does a Remediation) in
`actions`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from devops_operator.api.actions import RemediationAction, RemediationParameters, action_problems
from devops_operator.api.common import (
    AWS_REGION_PATTERN,
    DNS_LABEL_PATTERN,
    DURATION_PATTERN,
    REQUESTED_AT_ANNOTATION,
    EnvironmentName,
    KindInfo,
    Model,
    OnDemandStatus,
    Phase,
    PrinterColumn,
    ProjectReference,
    ResourceType,
    standard_columns,
)
from devops_operator.durations import parse_duration

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)


def parse_rfc3339(value: str) -> datetime:
    """The moment an RFC 3339 string names (always timezone-aware: the pattern requires an offset)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def _check_rfc3339(value: str) -> str:
    try:
        parse_rfc3339(value)
    except ValueError as exc:
        raise ValueError(f"not a valid RFC 3339 time: {value!r}") from exc
    return value


Rfc3339Time = Annotated[str, Field(pattern=RFC3339_PATTERN), AfterValidator(_check_rfc3339)]
"""A moment written by a user: RFC 3339 with an explicit offset, e.g. 2025-03-01T14:05:00Z."""

AwsRegion = Annotated[str, Field(pattern=AWS_REGION_PATTERN)]
"""An AWS region name, e.g. eu-west-1."""


APIGATEWAY_TYPES = frozenset({ResourceType.APIGATEWAY_REST, ResourceType.APIGATEWAY_HTTP})


class Verdict(StrEnum):
    """The health of a metric, a resource or a whole check.

    NOT_FOUND is a resource's verdict only: the target does not exist in AWS (reported as such, never
    as NO_DATA); it makes the overall verdict UNHEALTHY.
    """

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"
    NO_DATA = "NO_DATA"
    NOT_FOUND = "NOT_FOUND"


class MissingDataPolicy(StrEnum):
    """How a metric with no datapoints in the window counts (CloudWatch alarms' treatMissingData)."""

    NO_DATA = "no-data"
    BREACHING = "breaching"
    NOT_BREACHING = "not-breaching"
    IGNORE = "ignore"


class MetricStatistic(StrEnum):
    AVERAGE = "Average"
    SUM = "Sum"
    MINIMUM = "Minimum"
    MAXIMUM = "Maximum"
    SAMPLE_COUNT = "SampleCount"
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


PERCENTILE_STATISTICS = (MetricStatistic.P50, MetricStatistic.P90, MetricStatistic.P95, MetricStatistic.P99)


class ComparisonOperator(StrEnum):
    """How a value is compared with a threshold (CloudWatch alarms' names)."""

    GREATER_THAN = "GreaterThanThreshold"
    GREATER_THAN_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    LESS_THAN = "LessThanThreshold"
    LESS_THAN_OR_EQUAL = "LessThanOrEqualToThreshold"


GREATER_COMPARISONS = frozenset({ComparisonOperator.GREATER_THAN, ComparisonOperator.GREATER_THAN_OR_EQUAL})


class MetricUnit(StrEnum):
    """CloudWatch standard units."""

    SECONDS = "Seconds"
    MICROSECONDS = "Microseconds"
    MILLISECONDS = "Milliseconds"
    BYTES = "Bytes"
    KILOBYTES = "Kilobytes"
    MEGABYTES = "Megabytes"
    GIGABYTES = "Gigabytes"
    TERABYTES = "Terabytes"
    BITS = "Bits"
    KILOBITS = "Kilobits"
    MEGABITS = "Megabits"
    GIGABITS = "Gigabits"
    TERABITS = "Terabits"
    PERCENT = "Percent"
    COUNT = "Count"
    BYTES_PER_SECOND = "Bytes/Second"
    KILOBYTES_PER_SECOND = "Kilobytes/Second"
    MEGABYTES_PER_SECOND = "Megabytes/Second"
    GIGABYTES_PER_SECOND = "Gigabytes/Second"
    TERABYTES_PER_SECOND = "Terabytes/Second"
    BITS_PER_SECOND = "Bits/Second"
    KILOBITS_PER_SECOND = "Kilobits/Second"
    MEGABITS_PER_SECOND = "Megabits/Second"
    GIGABITS_PER_SECOND = "Gigabits/Second"
    TERABITS_PER_SECOND = "Terabits/Second"
    COUNT_PER_SECOND = "Count/Second"
    NONE = "None"


# --- spec ------------------------------------------------------------------------------------------


class DeploymentTargets(Model):
    """The resources an InfraDeployment manages, read from the project's resource registry."""

    name: str = Field(
        min_length=1, max_length=253, description="Name of the InfraDeployment (in this namespace)."
    )
    resource_types: list[ResourceType] = Field(
        default_factory=list,
        max_length=len(ResourceType),
        description="Only resources of these types; empty: every registry resource of a supported type.",
    )


class TagSelector(Model):
    """Resources found through the Resource Groups Tagging API in the environment's account and region."""

    tags: dict[str, str] = Field(
        min_length=1, description="Tags a resource must all carry, with exactly these values."
    )
    resource_types: list[ResourceType] = Field(
        default_factory=list,
        max_length=len(ResourceType),
        description="Only resources of these types; empty: every supported type.",
    )


class MetricThreshold(Model):
    """Where a metric's value stops being healthy; a metric with neither threshold is reported only."""

    warning: float | None = Field(default=None, description="A breach makes the resource at least DEGRADED.")
    critical: float | None = Field(default=None, description="A breach makes the resource UNHEALTHY.")


class MetricSpec(Model):
    """One metric to evaluate: a new one, or an override of the one with its name (unset fields inherit)."""

    name: str = Field(
        min_length=1,
        max_length=255,
        description=(
            "CloudWatch metric name (e.g. Errors, CPUUtilization), or a derived metric the built-in "
            "defaults define (e.g. ErrorRate for lambda: Errors / Invocations * 100)."
        ),
    )
    enabled: bool = Field(default=True, description="false removes this metric (e.g. a built-in default).")
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="CloudWatch namespace; defaults to the resource type's (AWS/Lambda, AWS/RDS, ...).",
    )
    dimensions: dict[str, str] = Field(
        default_factory=dict,
        description="Dimensions added to, or replacing by name, the resource's own (e.g. FunctionName).",
    )
    statistic: MetricStatistic | None = Field(default=None, description="Statistic of each datapoint.")
    period: int | None = Field(
        default=None,
        ge=1,
        le=86400,
        description="Seconds per datapoint: 1, 5, 10, 30 or a multiple of 60.",
    )
    unit: MetricUnit | None = Field(
        default=None, description="Unit of the datapoints (CloudWatch standard unit)."
    )
    threshold: MetricThreshold | None = Field(default=None, description="Warning and critical thresholds.")
    comparison: ComparisonOperator | None = Field(
        default=None, description="How the value is compared with the thresholds."
    )
    datapoints_to_breach: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description=(
            "How many datapoints of the window must breach a threshold for it to count (default 1): the "
            "value judged is the N-th worst datapoint of the window."
        ),
    )
    missing_data: MissingDataPolicy | None = Field(
        default=None, description="How this metric counts with no datapoints; defaults to spec.missingData."
    )

    @model_validator(mode="after")
    def _check(self) -> MetricSpec:
        if self.period is not None and self.period not in (1, 5, 10, 30) and self.period % 60 != 0:
            raise ValueError(f"period: {self.period} is not 1, 5, 10, 30 or a multiple of 60 seconds")
        t = self.threshold
        if t is not None and t.warning is not None and t.critical is not None and self.comparison is not None:
            if self.comparison in GREATER_COMPARISONS and t.warning > t.critical:
                raise ValueError(
                    f"threshold: with comparison {self.comparison}, warning ({t.warning}) must not exceed "
                    f"critical ({t.critical})"
                )
            if self.comparison not in GREATER_COMPARISONS and t.warning < t.critical:
                raise ValueError(
                    f"threshold: with comparison {self.comparison}, warning ({t.warning}) must not be below "
                    f"critical ({t.critical})"
                )
        return self


def _unique_metric_names(metrics: list[MetricSpec], where: str) -> None:
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: metric names must be unique, repeated: {', '.join(duplicates)}")


class TypeMetrics(Model):
    """Metric overrides for every resource of one type."""

    type: ResourceType = Field(description="Resource type the metrics apply to.")
    include_defaults: bool = Field(
        default=True,
        description="false: evaluate only the metrics listed here, none of the built-in defaults.",
    )
    metrics: list[MetricSpec] = Field(
        default_factory=list,
        max_length=50,
        description="Metrics added or overriding the built-in defaults, by name.",
    )

    @model_validator(mode="after")
    def _check(self) -> TypeMetrics:
        _unique_metric_names(self.metrics, "metrics")
        return self


class TargetResource(Model):
    """One AWS resource named explicitly."""

    type: ResourceType = Field(description="Resource type.")
    id: str = Field(
        min_length=1,
        max_length=2048,
        description=(
            "The identifier CloudWatch dimensions use: function name (lambda), DB instance identifier (rds), "
            "service name (ecs-service), API name (apigateway-rest), API id (apigateway-http), bucket (s3), "
            "table (dynamodb), queue name (sqs). An ARN is also accepted."
        ),
    )
    name: str | None = Field(
        default=None,
        max_length=253,
        description="Display name in status, metrics labels and references (slos, policy); defaults to id.",
    )
    cluster: str | None = Field(
        default=None, min_length=1, max_length=255, description="ECS cluster name (required for ecs-service)."
    )
    stage: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="API Gateway stage (apigateway-rest, apigateway-http only); omit for API-wide metrics.",
    )
    region: AwsRegion | None = Field(
        default=None, description="AWS region of the resource; defaults to the environment's region."
    )
    metrics: list[MetricSpec] = Field(
        default_factory=list,
        max_length=50,
        description="Metric overrides for this resource only, on top of the type-level ones, by name.",
    )

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @model_validator(mode="after")
    def _check(self) -> TargetResource:
        if self.type == ResourceType.ECS_SERVICE and not self.cluster:
            raise ValueError(f"cluster is required for an ecs-service target ({self.id})")
        if self.type != ResourceType.ECS_SERVICE and self.cluster is not None:
            raise ValueError(f"cluster applies only to ecs-service targets, not {self.type} ({self.id})")
        if self.stage is not None and self.type not in APIGATEWAY_TYPES:
            raise ValueError(f"stage applies only to apigateway-rest and apigateway-http targets ({self.id})")
        _unique_metric_names(self.metrics, "metrics")
        return self


class HealthTargets(Model):
    """Which resources the check covers: exactly one of deploymentRef, resources or tagSelector."""

    deployment_ref: DeploymentTargets | None = Field(
        default=None, description="The resources an InfraDeployment manages, from the resource registry."
    )
    resources: list[TargetResource] = Field(
        default_factory=list, max_length=1000, description="An explicit list of resources."
    )
    tag_selector: TagSelector | None = Field(default=None, description="Resources carrying the given tags.")

    @model_validator(mode="after")
    def _check(self) -> HealthTargets:
        given = [
            wire
            for wire, present in (
                ("deploymentRef", self.deployment_ref is not None),
                ("resources", bool(self.resources)),
                ("tagSelector", self.tag_selector is not None),
            )
            if present
        ]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"targets: set exactly one of deploymentRef, resources, tagSelector (found: {found})"
            )
        keys = [(r.type, r.id, r.cluster, r.stage, r.region) for r in self.resources]
        if len(set(keys)) != len(keys):
            raise ValueError("targets.resources: the same resource is listed twice")
        names = [r.display_name for r in self.resources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"targets.resources: display names must be unique (set name to tell them apart): "
                f"{', '.join(duplicates)}"
            )
        return self


class TimeAnchor(Model):
    """A window around a moment (an incident, a deploy): from at - before to at + after."""

    at: Rfc3339Time = Field(description="The moment (RFC 3339, e.g. 2025-03-01T14:05:00Z).")
    before: str = Field(default="15m", pattern=DURATION_PATTERN, description="How long before the moment.")
    after: str = Field(default="15m", pattern=DURATION_PATTERN, description="How long after the moment.")


DEFAULT_HEALTH_WINDOW_MINUTES = 5


class EvaluationWindow(Model):
    """The time range the metrics are read over: lastMinutes or anchor, not both."""

    last_minutes: int | None = Field(
        default=None,
        ge=1,
        le=10080,
        description=f"The last N minutes before each check ({DEFAULT_HEALTH_WINDOW_MINUTES} without anchor).",
    )
    anchor: TimeAnchor | None = Field(default=None, description="A fixed window around a moment.")

    @model_validator(mode="after")
    def _check(self) -> EvaluationWindow:
        if self.last_minutes is not None and self.anchor is not None:
            raise ValueError("window: set either lastMinutes or anchor, not both")
        if self.last_minutes is None and self.anchor is None:
            self.last_minutes = DEFAULT_HEALTH_WINDOW_MINUTES
        return self


MAX_SLO_WINDOW_DAYS = 30


def _duration_seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


class SloGoodCondition(Model):
    """When one datapoint of the SLO's metric counts as good."""

    comparison: ComparisonOperator = Field(description="Good when `value <comparison> threshold` holds.")
    threshold: float = Field(description="The threshold the value is compared with.")


class SloSpec(Model):
    """A service-level objective on one metric of one resource, reported in status and as gauges."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Name of the SLO.")
    target: str = Field(
        min_length=1,
        max_length=2048,
        description="The resource measured: the id or name of one of the check's resources.",
    )
    metric: str = Field(
        min_length=1,
        max_length=255,
        description=(
            "Name of a metric evaluated for that resource (a built-in default or one in spec.metrics); "
            "its statistic applies, and its period, raised where CloudWatch keeps no datapoint that fine over the "
            "SLO window (see window). List a metric without thresholds to use it only here."
        ),
    )
    objective: float = Field(
        gt=0,
        lt=100,
        description="Target percentage of good datapoints, e.g. 99.9 (100 leaves no error budget).",
    )
    window: str = Field(
        default="30d",
        pattern=DURATION_PATTERN,
        description=(
            f"Rolling window of the SLO, at most {MAX_SLO_WINDOW_DAYS}d. It is read from CloudWatch at the "
            "metric's period raised to the finest one CloudWatch keeps over the window (60 s up to 15 days, "
            "300 s up to 63 days) and at most 10,080 datapoints per query (docs/architecture.md)."
        ),
    )
    good_condition: SloGoodCondition = Field(description="When a datapoint counts as good.")

    @model_validator(mode="after")
    def _check(self) -> SloSpec:
        seconds = _duration_seconds(self.window)
        if not 0 < seconds <= MAX_SLO_WINDOW_DAYS * 86400:
            raise ValueError(f"window: {self.window} must be longer than 0 and at most {MAX_SLO_WINDOW_DAYS}d")
        return self


class RemediationPolicy(Model):
    """Create Remediations when resources turn bad. In production they wait for approval."""

    enabled: bool = Field(default=True, description="false pauses the policy without removing it.")
    on_verdict: Literal[Verdict.UNHEALTHY, Verdict.DEGRADED] = Field(
        default=Verdict.UNHEALTHY,
        description=(
            "Act on this verdict or worse (DEGRADED also acts on UNHEALTHY); NO_DATA and NOT_FOUND never act."
        ),
    )
    consecutive_checks: int = Field(
        default=2,
        ge=1,
        le=20,
        description="Checks in a row with that verdict before a Remediation is created.",
    )
    action: RemediationAction = Field(description="The action of the Remediations created.")
    parameters: RemediationParameters = Field(
        default_factory=RemediationParameters, description="Parameters of the action."
    )
    resources: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Ids or names of the resources the policy may act on; empty: every resource whose type the "
            "action supports."
        ),
    )
    max_per_day: int = Field(
        default=3, ge=1, le=100, description="Most Remediations this policy creates in any 24 hours."
    )
    cooldown: str = Field(
        default="30m",
        pattern=DURATION_PATTERN,
        description="Least time between two Remediations of the same resource.",
    )
    dry_run: bool = Field(default=False, description="Create the Remediations as dry runs (assessment only).")
    rollback_on_failure: bool = Field(
        default=True,
        description="Roll back where the action has an inverse when verification (through this check) fails.",
    )

    @model_validator(mode="after")
    def _check(self) -> RemediationPolicy:
        problems = action_problems(self.action, self.parameters)
        if problems:
            raise ValueError("remediationPolicy: " + "; ".join(problems))
        return self


class PerformanceSpec(Model):
    """The performance analysis in the report: each metric's window against the previous window."""

    percentiles: list[Literal[MetricStatistic.P50, MetricStatistic.P90, MetricStatistic.P95, MetricStatistic.P99]] = (
        Field(
            default_factory=list,
            max_length=4,
            description=(
                "Percentiles also read for the metrics CloudWatch serves them for (latencies and durations "
                "published as raw values: Lambda Duration, API Gateway Latency, ...), one query each per "
                "metric; empty: none (they cost a metric each)."
            ),
        )
    )

    @model_validator(mode="after")
    def _check(self) -> PerformanceSpec:
        if len(set(self.percentiles)) != len(self.percentiles):
            raise ValueError("percentiles: each percentile once")
        return self


class HealthCheckSpec(Model):
    project_ref: ProjectReference = Field(description="The DevOpsProject this check belongs to.")
    environment: EnvironmentName
    targets: HealthTargets = Field(description="The resources to check.")
    metrics: list[TypeMetrics] = Field(
        default_factory=list,
        max_length=len(ResourceType),
        description=(
            "Metric overrides per resource type, one entry per type. Each metric is merged by name and "
            "field by field: the built-in default, then this type-level entry, then the target's own. "
            "A new metric's unset fields take the type's CloudWatch namespace, the resource's own "
            "dimensions, statistic Average, period 60 and comparison GreaterThanThreshold."
        ),
    )
    missing_data: MissingDataPolicy = Field(
        default=MissingDataPolicy.NO_DATA,
        description=(
            "How a metric without datapoints in the window counts. no-data: the resource is NO_DATA unless "
            "another metric makes it DEGRADED or UNHEALTHY; breaching: counts as a critical breach; "
            "not-breaching: counts as within thresholds (for metrics emitted only on events); ignore: the "
            "metric is left out. A resource none of whose metrics has data is NO_DATA, never HEALTHY."
        ),
    )
    window: EvaluationWindow = Field(
        default_factory=EvaluationWindow, description="The time range the metrics are read over."
    )
    slos: list[SloSpec] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "Service-level objectives. SLI = good datapoints / datapoints with data over the SLO window; "
            "SLOs do not change the verdict."
        ),
    )
    interval: str = Field(
        default="5m",
        pattern=DURATION_PATTERN,
        description=f"Time between checks; a new {REQUESTED_AT_ANNOTATION} annotation value checks now.",
    )
    suspend: bool = Field(default=False, description="Stop periodic checks (requested checks still run).")
    history_limit: int = Field(
        default=20, ge=0, le=100, description="How many past verdicts status.history keeps."
    )
    performance: PerformanceSpec = Field(
        default_factory=PerformanceSpec,
        description="The performance analysis of the report ConfigMap (window against the previous window).",
    )
    remediation_policy: RemediationPolicy | None = Field(
        default=None, description="Create Remediations automatically when resources turn bad."
    )

    @model_validator(mode="after")
    def _check(self) -> HealthCheckSpec:
        types = [str(m.type) for m in self.metrics]
        repeated = sorted({t for t in types if types.count(t) > 1})
        if repeated:
            raise ValueError(f"metrics: one entry per type, repeated: {', '.join(repeated)}")
        slo_names = [s.name for s in self.slos]
        duplicates = sorted({n for n in slo_names if slo_names.count(n) > 1})
        if duplicates:
            raise ValueError(f"slos: names must be unique, repeated: {', '.join(duplicates)}")
        if self.targets.resources:
            by_ref = {r.id: r for r in self.targets.resources} | {
                r.display_name: r for r in self.targets.resources
            }
            for slo in self.slos:
                if slo.target not in by_ref:
                    raise ValueError(
                        f"slos[{slo.name}].target: {slo.target!r} is not one of targets.resources"
                    )
            policy = self.remediation_policy
            if policy is not None:
                for ref in policy.resources:
                    resource = by_ref.get(ref)
                    if resource is None:
                        raise ValueError(
                            f"remediationPolicy.resources: {ref!r} is not one of targets.resources"
                        )
                    problems = action_problems(policy.action, policy.parameters, resource.type)
                    if problems:
                        raise ValueError(f"remediationPolicy ({ref}): " + "; ".join(problems))
        return self


# --- status ----------------------------------------------------------------------------------------


class MetricResult(Model):
    name: str = Field(description="Metric name.")
    verdict: Verdict = Field(description="What this metric alone says.")
    value: float | None = Field(default=None, description="The value judged; absent when there was no data.")
    threshold: float | None = Field(
        default=None,
        description="The threshold breached (critical before warning), else the warning (or critical) one.",
    )
    comparison: ComparisonOperator | None = Field(default=None, description="How value met threshold.")
    unit: str | None = Field(default=None, description="Unit of value and threshold.")
    statistic: str | None = Field(default=None, description="Statistic of the datapoints.")
    datapoints: int = Field(default=0, ge=0, description="Datapoints found in the window.")


class ResourceHealth(Model):
    id: str = Field(description="Identifier of the resource.")
    name: str | None = Field(default=None, description="Display name, when it differs from id.")
    type: ResourceType = Field(description="Resource type.")
    region: str | None = Field(default=None, description="AWS region of the resource.")
    verdict: Verdict = Field(
        description=(
            "NOT_FOUND when the resource does not exist in AWS (no metric is read for it); else UNHEALTHY "
            "when a metric breaches critical; else DEGRADED when one breaches warning; else NO_DATA when "
            "missing data says so or no metric has any datapoint; else HEALTHY."
        )
    )
    reasons: list[str] = Field(
        max_length=20, default_factory=list, description="Why, one line per metric that decided it."
    )
    metrics: list[MetricResult] = Field(max_length=60, default_factory=list, description="Every metric evaluated.")
    since: str | None = Field(default=None, description="When the resource got this verdict (RFC 3339).")
    consecutive: int = Field(default=1, ge=0, description="Checks in a row that gave this verdict.")


class SloAlert(StrEnum):
    PAGE = "page"
    TICKET = "ticket"


class SloBurnRate(Model):
    window: str = Field(description="The alerting window (5m, 30m, 1h, 6h).")
    burn_rate: float | None = Field(default=None, description="Burn rate over it; absent without data.")


class SloStatus(Model):
    name: str = Field(description="Name of the SLO.")
    target: str | None = Field(default=None, description="The resource measured.")
    objective: float = Field(description="Target percentage of good datapoints.")
    sli: float | None = Field(
        default=None,
        description="Measured percentage of good datapoints over the window; absent without data.",
    )
    error_budget_remaining: float | None = Field(
        default=None,
        description="Percentage of the window's error budget left (negative once overspent).",
    )
    burn_rate: float | None = Field(
        default=None,
        description=(
            "Error rate over the last hour over the rate the objective allows (1: on budget); "
            "burnRates has every alerting window."
        ),
    )
    burn_rates: list[SloBurnRate] = Field(
        default_factory=list, max_length=4, description="Burn rate over each alerting window (5m, 30m, 1h, 6h)."
    )
    alert: SloAlert | None = Field(
        default=None,
        description=(
            "page: 1h and 5m both burn at 14.4x or more; ticket: 6h and 30m both at 6x or more (multi-window, "
            "multi-burn-rate alerting of the Google SRE workbook); absent: neither."
        ),
    )
    window: str | None = Field(default=None, description="The SLO window.")
    period: int | None = Field(default=None, ge=1, description="Seconds per datapoint the SLO was read at.")
    good_datapoints: int = Field(default=0, ge=0, description="Good datapoints over the SLO window.")
    total_datapoints: int = Field(default=0, ge=0, description="Datapoints with data over the SLO window.")
    message: str | None = Field(default=None, description="Why there is no indicator, when there is none.")


class HealthApiCalls(Model):
    """AWS API calls the last check made (every request sent, paging included) and what it cost."""

    get_metric_data: int = Field(default=0, ge=0, description="GetMetricData requests (pages included).")
    total: int = Field(
        default=0,
        ge=0,
        description="All AWS requests: GetMetricData, discovery (tagging) and existence checks (describe, list).",
    )
    retries: int = Field(
        default=0, ge=0, description="Attempts botocore retried with backoff (throttling, server errors)."
    )
    metrics_requested: int = Field(
        default=0, ge=0, description="Metric queries sent, per request (what GetMetricData bills)."
    )
    estimated_cost_usd: float = Field(
        default=0.0, ge=0, description="What the check cost at $0.01 per 1,000 metrics requested."
    )
    cpu_seconds: float = Field(default=0.0, ge=0, description="The operator's own CPU time for the check.")
    duration_seconds: float = Field(default=0.0, ge=0, description="Wall time of the check.")


class VerdictCounts(Model):
    total: int = Field(default=0, ge=0, description="Resources checked.")
    healthy: int = Field(default=0, ge=0, description="Resources HEALTHY.")
    degraded: int = Field(default=0, ge=0, description="Resources DEGRADED.")
    unhealthy: int = Field(default=0, ge=0, description="Resources UNHEALTHY.")
    no_data: int = Field(default=0, ge=0, description="Resources NO_DATA.")
    not_found: int = Field(default=0, ge=0, description="Targets that do not exist in AWS.")


class TargetsSummary(Model):
    """Where the resources came from, and what was left out."""

    source: Literal["deploymentRef", "resources", "tagSelector"] = Field(description="Which form of spec.targets.")
    resolved: int = Field(default=0, ge=0, description="Resources of a supported type found.")
    skipped: int = Field(
        default=0, ge=0, description="Resources found whose type HealthCheck does not check (not counted)."
    )
    skipped_types: list[str] = Field(
        default_factory=list, max_length=20, description="Those types (e.g. aws_iam_role), most frequent first."
    )
    skipped_types_truncated: bool = Field(default=False, description="More types were skipped than listed.")


class HistoryEntry(Model):
    at: str = Field(description="When the check ran (RFC 3339).")
    verdict: Verdict = Field(description="The overall verdict of that check.")
    unhealthy: int = Field(default=0, ge=0, description="Resources UNHEALTHY or NOT_FOUND in that check.")
    degraded: int = Field(default=0, ge=0, description="Resources DEGRADED in that check.")


class CreatedRemediation(Model):
    name: str = Field(description="Name of the Remediation created.")
    resource: str = Field(description="Id of the resource it acts on.")
    action: RemediationAction = Field(description="The action.")
    at: str = Field(description="When it was created (RFC 3339).")


class HealthCheckStatus(OnDemandStatus):
    phase: Phase | None = Field(
        default=None,
        description="Pending, Reconciling (a check is running), Ready (checked), Stalled or Failed.",
    )
    verdict: Verdict | None = Field(
        default=None,
        description=(
            "Overall verdict: UNHEALTHY if any resource is UNHEALTHY or NOT_FOUND; else DEGRADED if any is; "
            "else NO_DATA if any is (or there are no resources); else HEALTHY."
        ),
    )
    counts: VerdictCounts = Field(default_factory=VerdictCounts, description="Resources per verdict.")
    resources: list[ResourceHealth] = Field(
        max_length=100,
        default_factory=list,
        description="The verdict of each resource, worst first (see resourcesTruncated; counts has every one).",
    )
    resources_truncated: bool = Field(
        default=False, description="More resources were checked than status.resources holds (the report has all)."
    )
    slos: list[SloStatus] = Field(
        max_length=50, default_factory=list, description="Each SLO's indicator and error budget."
    )
    targets: TargetsSummary | None = Field(default=None, description="Where the last check's resources came from.")
    api_calls: HealthApiCalls | None = Field(default=None, description="AWS API calls the last check made.")
    report: str | None = Field(
        default=None,
        description="ConfigMap with the last check's full report (report.json, report.md): every resource, "
        "metric and the performance analysis.",
    )
    last_check: str | None = Field(default=None, description="When the last check ran (RFC 3339).")
    next_check: str | None = Field(default=None, description="When the next check is due (RFC 3339).")
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=100, description="Past verdicts, newest first (spec.historyLimit)."
    )
    remediations: list[CreatedRemediation] = Field(
        default_factory=list,
        max_length=100,
        description="Remediations the policy created in the last 24 hours (for maxPerDay and cooldown).",
    )


KIND = KindInfo(
    kind="HealthCheck",
    plural="healthchecks",
    singular="healthcheck",
    short_names=["hc"],
    description=(
        "Periodic health of a set of AWS resources (from a deployment's registry, an explicit list or a tag "
        "selector) judged from batched CloudWatch metrics: HEALTHY, DEGRADED, UNHEALTHY or NO_DATA, with "
        "SLOs, error budgets and an optional remediation policy."
    ),
    spec=HealthCheckSpec,
    status=HealthCheckStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Env", json_path=".spec.environment"),
        PrinterColumn(name="Verdict", json_path=".status.verdict"),
        PrinterColumn(name="Resources", json_path=".status.counts.total", type="integer"),
        PrinterColumn(name="Unhealthy", json_path=".status.counts.unhealthy", type="integer", priority=1),
        PrinterColumn(name="Cost", json_path=".status.apiCalls.estimatedCostUsd", type="number", priority=1),
        PrinterColumn(name="Last Check", json_path=".status.lastCheck", type="date"),
    ),
)
