"""CostAudit: a (scheduled) cost, security and compliance audit of one environment."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from devops_operator.api.common import (
    CRON_PATTERN,
    DURATION_PATTERN,
    REQUESTED_AT_ANNOTATION,
    EnvironmentName,
    KindInfo,
    Model,
    OnDemandStatus,
    PrinterColumn,
    ProjectReference,
    standard_columns,
)
from devops_operator.api.investigation import RunPhase

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DEFAULT_AUDIT_DAYS = 30
DEFAULT_SENSITIVE_PORTS = [22, 3389, 3306, 5432, 1433, 1521, 6379, 11211, 27017, 9200, 5601]


def _check_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a valid date (YYYY-MM-DD): {value!r}") from exc
    return value


IsoDate = Annotated[str, Field(pattern=DATE_PATTERN), AfterValidator(_check_date)]
"""A calendar date, YYYY-MM-DD (what Cost Explorer takes)."""

Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP or UDP port."""

TagKey = Annotated[str, Field(min_length=1, max_length=128)]
"""An AWS tag key."""


class AuditPeriod(Model):
    """The period whose cost is audited: lastDays, or start and end; not both."""

    last_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description=f"The last N full days before the run ({DEFAULT_AUDIT_DAYS} when start is unset).",
    )
    start: IsoDate | None = Field(default=None, description="First day of a fixed period (YYYY-MM-DD).")
    end: IsoDate | None = Field(
        default=None, description="Day after the last day of a fixed period (exclusive, as in Cost Explorer)."
    )

    @model_validator(mode="after")
    def _check(self) -> AuditPeriod:
        fixed = self.start is not None or self.end is not None
        if self.last_days is not None and fixed:
            raise ValueError("period: set either lastDays or start/end, not both")
        if fixed and (self.start is None or self.end is None):
            raise ValueError("period: start and end go together")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"period.end ({self.end}) must be after period.start ({self.start})")
        if not fixed and self.last_days is None:
            self.last_days = DEFAULT_AUDIT_DAYS
        return self


class AuditChecks(Model):
    """Which parts of the audit run."""

    cost: bool = Field(default=True, description="Cost by service over the period, trend and top drivers.")
    rightsizing: bool = Field(
        default=True, description="Right-sizing from CloudWatch utilization (RDS, EC2, ECS, Lambda memory)."
    )
    graviton: bool = Field(default=True, description="Graviton (arm64) candidates.")
    s3_tiering: bool = Field(default=True, description="S3 Intelligent-Tiering candidates.")
    idle: bool = Field(
        default=True, description="Idle resources: unattached EBS volumes, unused Elastic IPs."
    )
    security: bool = Field(
        default=True,
        description=(
            "S3 public access and encryption, RDS unencrypted or public, security groups open to the world "
            "on sensitive ports, IAM wildcards."
        ),
    )
    compliance: bool = Field(
        default=True,
        description="Required-tag coverage, from the services' own inventories (not only the tagging API).",
    )


class AuditThresholds(Model):
    """When a resource becomes a recommendation."""

    cpu_utilization_percent: float = Field(
        default=40,
        gt=0,
        le=100,
        description="Average CPU below which an RDS, EC2 or ECS resource is a right-sizing candidate.",
    )
    memory_utilization_percent: float = Field(
        default=40,
        gt=0,
        le=100,
        description="Average memory below which an ECS service (or EC2 with the agent) is a candidate.",
    )
    lambda_memory_utilization_percent: float = Field(
        default=60,
        gt=0,
        le=100,
        description="Peak memory used, as a share of the configured size, below which a Lambda is one.",
    )
    lookback_days: int = Field(default=14, ge=1, le=63, description="Days of utilization data considered.")
    s3_tiering_min_size_gib: float = Field(
        default=100,
        ge=0,
        description="Buckets smaller than this (GiB) are not Intelligent-Tiering candidates.",
    )
    min_monthly_savings: float = Field(
        default=1.0, ge=0, description="Recommendations saving less than this (USD per month) are left out."
    )


class CostAuditSpec(Model):
    project_ref: ProjectReference = Field(description="The DevOpsProject of the environment audited.")
    environment: EnvironmentName
    period: AuditPeriod = Field(default_factory=AuditPeriod, description="The period audited.")
    schedule: str | None = Field(
        default=None,
        max_length=128,
        pattern=CRON_PATTERN,
        description=(
            "Cron schedule of repeated runs (e.g. '0 6 * * 1' or @weekly); unset: run once per generation. "
            f"A new {REQUESTED_AT_ANNOTATION} annotation value runs it now."
        ),
    )
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_+/-]+$",
        description="IANA time zone of the schedule, e.g. Europe/Paris.",
    )
    suspend: bool = Field(default=False, description="Stop scheduled runs (requested runs still happen).")
    checks: AuditChecks = Field(default_factory=AuditChecks, description="Which parts of the audit run.")
    environment_tag_key: TagKey = Field(
        default="environment",
        description="Cost allocation tag whose value is the environment name (Cost Explorer filter).",
    )
    thresholds: AuditThresholds = Field(
        default_factory=AuditThresholds, description="When a resource becomes a recommendation."
    )
    sensitive_ports: list[Port] = Field(
        default_factory=lambda: list(DEFAULT_SENSITIVE_PORTS),
        max_length=100,
        description="Ports a security group must not open to 0.0.0.0/0 or ::/0.",
    )
    required_tags: list[TagKey] = Field(
        default_factory=list,
        max_length=50,
        description="Tag keys the compliance check requires; empty: the DevOpsProject's requiredTags.",
    )
    cache_ttl: str = Field(
        default="6h",
        pattern=DURATION_PATTERN,
        description="How long Cost Explorer results are reused (each request costs $0.01).",
    )
    cost_explorer_request_limit: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Most Cost Explorer requests one run may make (paging included).",
    )
    top_drivers: int = Field(default=5, ge=1, le=20, description="How many top cost drivers status lists.")
    history_limit: int = Field(
        default=3, ge=1, le=50, description="Report ConfigMaps kept, one per run (the oldest are deleted)."
    )


# --- status ----------------------------------------------------------------------------------------


class CostTotals(Model):
    cost: float = Field(description="Cost of the period.")
    previous_period_cost: float | None = Field(
        default=None, description="Cost of the period of the same length just before."
    )
    trend_percent: float | None = Field(
        default=None, description="Change against the previous period, in percent (absent when it cost 0)."
    )
    currency: str = Field(default="USD", description="Currency of the amounts.")
    period_start: str | None = Field(default=None, description="First day of the period (YYYY-MM-DD).")
    period_end: str | None = Field(default=None, description="Day after the last day (YYYY-MM-DD).")


class CostDriver(Model):
    service: str = Field(description="AWS service, as Cost Explorer names it.")
    cost: float = Field(description="Its cost over the period.")
    share_percent: float | None = Field(default=None, description="Its share of the total, in percent.")


class RecommendationSummary(Model):
    total: int = Field(default=0, ge=0, description="Recommendations.")
    high: int = Field(default=0, ge=0, description="High-priority recommendations.")
    medium: int = Field(default=0, ge=0, description="Medium-priority recommendations.")
    low: int = Field(default=0, ge=0, description="Low-priority recommendations.")
    total_monthly_savings: float = Field(
        default=0.0, ge=0, description="Estimated savings per month, in total."
    )


class FindingCounts(Model):
    total: int = Field(default=0, ge=0, description="Security findings.")
    critical: int = Field(default=0, ge=0, description="CRITICAL findings.")
    high: int = Field(default=0, ge=0, description="HIGH findings.")
    medium: int = Field(default=0, ge=0, description="MEDIUM findings.")
    low: int = Field(default=0, ge=0, description="LOW findings.")


class ComplianceSummary(Model):
    tag_coverage_percent: float | None = Field(
        default=None, ge=0, le=100, description="Share of resources carrying every required tag."
    )
    resources_checked: int = Field(default=0, ge=0, description="Resources inventoried.")
    untagged_resources: int = Field(default=0, ge=0, description="Resources missing a required tag.")
    required_tags: list[TagKey] = Field(max_length=50, default_factory=list, description="The tag keys required.")


class CostAuditStatus(OnDemandStatus):
    phase: RunPhase | None = Field(
        default=None,
        description=(
            "Pending, Running, Completed (until the next run) or Failed; Stalled for a spec that cannot work."
        ),
    )
    totals: CostTotals | None = Field(default=None, description="Cost of the period and its trend.")
    top_drivers: list[CostDriver] = Field(
        default_factory=list, max_length=20, description="The most expensive services, most first."
    )
    recommendations: RecommendationSummary | None = Field(
        default=None, description="Recommendations by priority and their savings."
    )
    findings: FindingCounts | None = Field(default=None, description="Security findings by severity.")
    compliance: ComplianceSummary | None = Field(default=None, description="Required-tag coverage.")
    cost_explorer_requests: int = Field(
        default=0, ge=0, description="Cost Explorer requests the last run made."
    )
    cost_explorer_cache_hits: int = Field(
        default=0, ge=0, description="Cost Explorer results the last run took from the cache."
    )
    cost_explorer_cost_usd: float = Field(
        default=0.0, ge=0, description="What the last run's Cost Explorer requests cost ($0.01 each)."
    )
    report_config_map: str | None = Field(
        default=None, description="ConfigMap holding the last run's report (report.json and report.md)."
    )
    last_run: str | None = Field(default=None, description="When the last run ended (RFC 3339).")
    next_run: str | None = Field(default=None, description="When the next scheduled run is due (RFC 3339).")


KIND = KindInfo(
    kind="CostAudit",
    plural="costaudits",
    singular="costaudit",
    short_names=["audit"],
    description=(
        "A (scheduled) cost, security and compliance audit of an environment: cost by service and trend, "
        "prioritised recommendations with savings, security findings and tag coverage, and a report."
    ),
    spec=CostAuditSpec,
    status=CostAuditStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Env", json_path=".spec.environment"),
        PrinterColumn(name="Cost", json_path=".status.totals.cost", type="number"),
        PrinterColumn(name="Savings", json_path=".status.recommendations.totalMonthlySavings", type="number"),
        PrinterColumn(name="Findings", json_path=".status.findings.total", type="integer"),
    ),
)
