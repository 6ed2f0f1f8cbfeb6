"""Investigation: one incident investigation or log query over a time window."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from devops_operator.api.common import (
    EnvironmentName,
    KindInfo,
    Model,
    OnDemandStatus,
    PrinterColumn,
    ProjectReference,
    standard_columns,
)
from devops_operator.api.healthcheck import (
    AwsRegion,
    Rfc3339Time,
    TimeAnchor,
    parse_rfc3339,
)

LogGroupName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[.\-_/#A-Za-z0-9]+$")]
"""A CloudWatch Logs log group name."""
DEFAULT_INVESTIGATION_MINUTES = 60


class RunPhase(StrEnum):
    """Phases of a kind that runs to completion (Investigation, CostAudit)."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STALLED = "Stalled"


class InvestigationMode(StrEnum):
    INVESTIGATE = "investigate"
    QUERY = "query"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Timeframe(Model):
    """The time range searched: exactly one of lastMinutes, start (with an optional end), or anchor."""

    last_minutes: int | None = Field(
        default=None,
        ge=1,
        le=43200,
        description=f"The last N minutes before the run ({DEFAULT_INVESTIGATION_MINUTES} when none is set).",
    )
    start: Rfc3339Time | None = Field(default=None, description="Start of a fixed range (RFC 3339).")
    end: Rfc3339Time | None = Field(
        default=None, description="End of a fixed range (RFC 3339); defaults to the time of the run."
    )
    anchor: TimeAnchor | None = Field(
        default=None, description="A range around a moment (an incident, a deploy)."
    )

    @model_validator(mode="after")
    def _check(self) -> Timeframe:
        if self.end is not None and self.start is None:
            raise ValueError("timeframe.end needs timeframe.start")
        given = [
            wire
            for wire, present in (
                ("lastMinutes", self.last_minutes is not None),
                ("start/end", self.start is not None),
                ("anchor", self.anchor is not None),
            )
            if present
        ]
        if len(given) > 1:
            raise ValueError(
                f"timeframe: set only one of lastMinutes, start/end, anchor (found: {', '.join(given)})"
            )
        if (
            self.start is not None
            and self.end is not None
            and parse_rfc3339(self.end) <= parse_rfc3339(self.start)
        ):
            raise ValueError(f"timeframe.end ({self.end}) must be after timeframe.start ({self.start})")
        if not given:
            self.last_minutes = DEFAULT_INVESTIGATION_MINUTES
        return self


class InvestigationSpec(Model):
    """Runs once per generation; a new value of the requested-at annotation runs it again."""

    project_ref: ProjectReference = Field(description="The DevOpsProject the service belongs to.")
    environment: EnvironmentName
    service: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description=(
            "A resource of the registry (id or name); its log groups follow from its type "
            "(e.g. /aws/lambda/<function>). Exactly one of service and logGroups."
        ),
    )
    log_groups: list[LogGroupName] = Field(
        default_factory=list,
        max_length=50,
        description="Explicit CloudWatch Logs log group names. Exactly one of service and logGroups.",
    )
    region: AwsRegion | None = Field(
        default=None, description="AWS region of the logs; defaults to the service's or environment's region."
    )
    timeframe: Timeframe = Field(default_factory=Timeframe, description="The time range searched.")
    filter_pattern: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "CloudWatch Logs filter pattern; unset: common error terms (ERROR, Exception, Timeout, ...) in "
            "investigate mode, every event in query mode."
        ),
    )
    mode: InvestigationMode = Field(
        default=InvestigationMode.INVESTIGATE,
        description=(
            "investigate: patterns, timeline, probable cause, recommendations and a report; "
            "query: just the matching events."
        ),
    )
    use_insights: bool = Field(
        default=False, description="Search with CloudWatch Logs Insights instead of FilterLogEvents."
    )
    insights_query: str | None = Field(
        default=None,
        min_length=1,
        max_length=10000,
        description="Logs Insights query (needs useInsights); unset: one built from filterPattern.",
    )
    max_events: int = Field(
        default=1000, ge=1, le=10000, description="Most matching events read (paging stops there)."
    )
    max_patterns: int = Field(default=10, ge=1, le=50, description="Most error patterns kept in status.")
    include_metrics: bool = Field(
        default=True, description="Merge metric anomalies of the service in the same range into the timeline."
    )
    include_deployments: bool = Field(
        default=True,
        description="Merge deployments (InfraDeployment applies) and Remediations into the timeline.",
    )

    @model_validator(mode="after")
    def _check(self) -> InvestigationSpec:
        if (self.service is None) == (not self.log_groups):
            raise ValueError("set exactly one of service and logGroups")
        if len(set(self.log_groups)) != len(self.log_groups):
            raise ValueError("logGroups: a log group is listed twice")
        if self.insights_query is not None and not self.use_insights:
            raise ValueError("insightsQuery needs useInsights: true")
        return self


# --- status ----------------------------------------------------------------------------------------


class ErrorPattern(Model):
    signature: str = Field(description="The message with numbers, ids and timestamps masked.")
    count: int = Field(ge=0, description="Matching events with this signature.")
    first_seen: str | None = Field(default=None, description="Earliest event (RFC 3339).")
    last_seen: str | None = Field(default=None, description="Latest event (RFC 3339).")
    example: str = Field(default="", description="One event verbatim (truncated).")
    log_group: str | None = Field(default=None, description="Log group of the example.")


class TimelineSummary(Model):
    """Counts of the timeline's entries (the timeline itself is in the report ConfigMap)."""

    total: int = Field(default=0, ge=0, description="Entries in the timeline.")
    log_patterns: int = Field(default=0, ge=0, description="Entries from error patterns.")
    metric_anomalies: int = Field(default=0, ge=0, description="Entries from metric anomalies.")
    deployments: int = Field(default=0, ge=0, description="Entries from deployments.")
    remediations: int = Field(default=0, ge=0, description="Entries from remediations.")


class ProbableCause(Model):
    summary: str = Field(description="One line naming the probable cause.")
    confidence: Confidence = Field(description="How sure the evidence makes it: high, medium or low.")
    signature: str | None = Field(default=None, description="The error pattern the cause rests on.")
    evidence: list[str] = Field(max_length=20, default_factory=list, description="The facts that support it.")


class InvestigationApiCalls(Model):
    """AWS API calls the run made (every request sent, paging and retries included)."""

    filter_log_events: int = Field(default=0, ge=0, description="FilterLogEvents requests.")
    start_query: int = Field(default=0, ge=0, description="Logs Insights StartQuery requests.")
    get_query_results: int = Field(default=0, ge=0, description="Logs Insights GetQueryResults requests.")
    get_metric_data: int = Field(default=0, ge=0, description="GetMetricData requests (includeMetrics).")
    describe: int = Field(
        default=0, ge=0, description="DescribeLogGroups and DescribeLogStreams requests (the log groups checked)."
    )
    total: int = Field(default=0, ge=0, description="All AWS requests.")
    throttled: int = Field(default=0, ge=0, description="Requests refused by throttling and retried.")
    bytes_scanned: int = Field(default=0, ge=0, description="Bytes Logs Insights scanned (what it bills).")
    estimated_cost_usd: float = Field(
        default=0.0, ge=0, description="Estimated cost of the run's Insights scans and metric requests."
    )


class InvestigationStatus(OnDemandStatus):
    phase: RunPhase | None = Field(
        default=None,
        description="Pending, Running, Completed or Failed; Stalled for a spec that cannot work.",
    )
    log_groups: list[LogGroupName] = Field(max_length=50, default_factory=list, description="The log groups searched.")
    window_start: str | None = Field(default=None, description="Start of the range searched (RFC 3339).")
    window_end: str | None = Field(default=None, description="End of the range searched (RFC 3339).")
    match_count: int | None = Field(default=None, ge=0, description="Matching events read.")
    truncated: bool | None = Field(default=None, description="Whether maxEvents stopped the search.")
    patterns: list[ErrorPattern] = Field(
        default_factory=list, max_length=50, description="Error patterns, most frequent first."
    )
    patterns_truncated: bool = Field(
        default=False, description="More error patterns were found than maxPatterns keeps (the report has all)."
    )
    timeline: TimelineSummary | None = Field(default=None, description="What the timeline holds.")
    probable_cause: ProbableCause | None = Field(default=None, description="The probable root cause.")
    recommendations: list[str] = Field(
        default_factory=list, max_length=20, description="What to do next, most useful first."
    )
    report_config_map: str | None = Field(
        default=None, description="ConfigMap holding the report (report.json and report.md) or the matches."
    )
    api_calls: InvestigationApiCalls | None = Field(default=None, description="AWS API calls the run made.")
    started_at: str | None = Field(default=None, description="When the run started (RFC 3339).")
    completed_at: str | None = Field(default=None, description="When it ended (RFC 3339).")


KIND = KindInfo(
    kind="Investigation",
    plural="investigations",
    singular="investigation",
    short_names=["inv"],
    description=(
        "One incident investigation or log query over a time window: matching log events, error patterns, "
        "a timeline with metrics, deployments and remediations, a probable root cause and a report."
    ),
    spec=InvestigationSpec,
    status=InvestigationStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Env", json_path=".spec.environment"),
        PrinterColumn(name="Service", json_path=".spec.service"),
        PrinterColumn(name="Matches", json_path=".status.matchCount", type="integer"),
        PrinterColumn(name="Cause", json_path=".status.probableCause.summary", priority=1),
    ),
)
