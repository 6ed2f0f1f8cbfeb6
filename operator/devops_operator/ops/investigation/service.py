"""Running one Investigation: the AWS reads and Kubernetes reads around the pure logic.

resolve the project → where the logs are (registry entry, ARN, name, or explicit log groups) → the
window (refused in the future, refused beyond the groups' retention, before any search) → FilterLogEvents
or Logs Insights, bounded by maxEvents → (investigate) patterns, metric anomalies through the one batched
GetMetricData, deployments and remediations → probable cause → the report ConfigMap. Every AWS request
is counted here, per run, for the status.

Bad input raises `InvestigationProblem` (reason + message naming the field and the fix) before any
search is made; AWS failures raise as botocore raised them (the controller classifies them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION, ResourceType, bounded, max_items
from devops_operator.api.healthcheck import parse_rfc3339
from devops_operator.api.investigation import (
    ErrorPattern,
    InvestigationApiCalls,
    InvestigationMode,
    InvestigationSpec,
    InvestigationStatus,
    ProbableCause,
    TimelineSummary,
)
from devops_operator.api.remediation import KIND as REMEDIATION_KIND
from devops_operator.aws import logs as aws_logs
from devops_operator.aws.cloudwatch import FetchStats, fetch_metrics
from devops_operator.aws.errors import classify
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import rfc3339
from devops_operator.kube.redaction import redact
from devops_operator.kube.store import ConfigMapDocument
from devops_operator.ops import registry_view
from devops_operator.ops.investigation import filterpattern, sources
from devops_operator.ops.investigation.anomalies import Anomaly, MetricSeries, find_all
from devops_operator.ops.investigation.causes import DEPLOYMENT_LOOKBACK, Change, Service, diagnose
from devops_operator.ops.investigation.patterns import Clustering, cluster
from devops_operator.ops.investigation.report import (
    REPORT_JSON,
    REPORT_MARKDOWN,
    Findings,
    build_report,
    render_markdown,
)
from devops_operator.ops.investigation.timeframe import TimeframeError, Window, resolve, retention_problem
from devops_operator.ops.investigation.timeline import EntryKind, build
from devops_operator.ops.remediation import log as remediation_log
from devops_operator.ops.remediation import ownership
from devops_operator.projectrefs import ProjectAccess
from devops_operator.runtime import Runtime

LOG_GROUP_NOT_FOUND = "LogGroupNotFound"
EMPTY_LOG_GROUP = "EmptyLogGroup"
SERVICE_NOT_FOUND = "ServiceNotFound"
NO_LOGS = "ServiceHasNoLogs"
TIMEFRAME_IN_FUTURE = "TimeframeInFuture"
BEYOND_RETENTION = "TimeframeBeyondRetention"
INVALID_FILTER = "InvalidFilterPattern"
OUTSIDE_PROJECT = "OutsideProject"


class InvestigationProblem(Exception):
    """A spec that cannot be searched as written: the reason and a message naming the field and the fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Located:
    """Where the logs are and which service they belong to (when one is known)."""

    log_groups: list[str]
    service: sources.ServiceRef | None
    found_by: str  # how the service was found: registry, arn, name, logGroups
    spec_field: str  # the spec field the log groups come from, for messages
    # What DescribeLogGroups already said while looking for the service (not asked twice).
    known: dict[str, aws_logs.LogGroupInfo] = field(default_factory=dict)


@dataclass
class RunResult:
    status: InvestigationStatus
    message: str
    report: dict[str, Any] = field(default_factory=dict)


def report_name(name: str) -> str:
    return f"{name[:246]}-report"


def _logs_field(located: Located, index: int) -> str:
    return f"spec.logGroups[{index}]" if located.spec_field == "spec.logGroups" else "spec.service"


def locate(runtime: Runtime, client: Any, namespace: str, access: ProjectAccess, spec: InvestigationSpec,
           calls: aws_logs.LogCalls) -> Located:
    same_namespace = namespace == access.namespace
    registry = registry_view.registry_resources(runtime.kube, namespace, access.name, access.namespace,
                                                spec.environment)
    if spec.log_groups:
        for index, group in enumerate(spec.log_groups):
            if ownership.log_group_owner(group, access.spec, access.name, spec.environment, registry,
                                         same_namespace=same_namespace) is None:
                raise InvestigationProblem(OUTSIDE_PROJECT, _outside(f"spec.logGroups[{index}]", f"log group {group}",
                                                                     access, spec.environment, same_namespace))
        services = [s for s in (sources.from_log_group(g) for g in spec.log_groups) if s is not None]
        return Located(list(spec.log_groups), services[0] if services else None, "logGroups", "spec.logGroups")
    reference = str(spec.service)
    entry = registry_view.find(registry, reference)
    if entry is not None and entry.type is not None:
        ref = sources.ServiceRef(entry.type, entry.name or entry.id or reference, entry.cluster)
        return _with_logs(ref, "registry")
    by_arn = sources.from_arn(reference)
    named = by_arn.id if by_arn is not None else reference
    if not same_namespace or not _follows_pattern(named, access, spec.environment):
        raise InvestigationProblem(OUTSIDE_PROJECT, _outside("spec.service", f"service {reference}", access,
                                                             spec.environment, same_namespace))
    if by_arn is not None:
        return _with_logs(by_arn, "arn")
    tried: list[str] = []
    for rtype in sources.NAME_LOOKUP_ORDER:
        ref = sources.ServiceRef(rtype, reference)
        groups = ref.log_groups()
        infos = {g: aws_logs.describe_log_group(client, g, calls) for g in groups}
        existing = {g: info for g, info in infos.items() if info.exists}
        tried += groups
        if existing:
            return Located(list(existing), ref, "name", "spec.service", existing)
    raise InvestigationProblem(
        SERVICE_NOT_FOUND,
        f"spec.service: {reference!r} is not in the resource registry of {access.key} ({spec.environment}), and no "
        f"log group of a service by that name exists (tried {', '.join(tried)}): name a registry resource, or set "
        "spec.logGroups",
    )


def _follows_pattern(name: str, access: ProjectAccess, environment: str) -> bool:
    """A service named outside the registry: the project's when its name follows the naming pattern."""
    return ownership.without_aws(ResourceType.LAMBDA, [name], access.spec, access.name, environment, []) is not None


def _outside(field: str, what: str, access: ProjectAccess, environment: str, same_namespace: bool) -> str:
    """Why a log group or service is not the referrer's to read (ops/remediation/ownership.py decides)."""
    if not same_namespace:
        return (f"{field}: {what} is not one of this namespace's deployments of DevOpsProject {access.key} "
                f"({environment}): from another namespace than the project's, only resources in the project's "
                "resource registry under this namespace's own InfraDeployments (and their log groups) may be "
                "searched; nothing was searched")
    how = (f"its name does not follow the naming pattern {access.spec.naming.pattern}"
           if ownership.naming_proves_ownership(access.spec, access.name, environment) else
           f"the naming pattern {access.spec.naming.pattern} has no {{project}} part, so a name proves nothing")
    return (f"{field}: {what} is not the project's: it is not a log group of a resource in the resource registry of "
            f"this namespace's deployments of {access.key} ({environment}), and {how}; nothing was searched")


def _with_logs(ref: sources.ServiceRef, found_by: str) -> Located:
    groups = ref.log_groups()
    if not groups:
        raise InvestigationProblem(
            NO_LOGS,
            f"spec.service: {ref.id} is a {ref.type.value}, whose logs have no fixed CloudWatch Logs group (or it "
            "writes none): set spec.logGroups to the log groups to search",
        )
    return Located(groups, ref, found_by, "spec.service")


def check_log_groups(client: Any, located: Located, window: Window, now: datetime,
                     calls: aws_logs.LogCalls, region: str) -> list[str]:
    """Refuse missing groups, a window beyond retention, and groups that are all empty; notes for the rest."""
    infos = [located.known.get(g) or aws_logs.describe_log_group(client, g, calls) for g in located.log_groups]
    missing = [(i, info) for i, info in enumerate(infos) if not info.exists]
    if missing:
        names = "; ".join(f"{_logs_field(located, i)}: log group {info.name} does not exist" for i, info in missing)
        raise InvestigationProblem(
            LOG_GROUP_NOT_FOUND,
            f"{names} (region {region}): check the name and region (spec.region), or that the service has logged "
            "anything yet",
        )
    for info in infos:
        problem = retention_problem(window, now, info.name, info.retention_days)
        if problem:
            raise InvestigationProblem(BEYOND_RETENTION, f"spec.timeframe: {problem}")
    empty = [info.name for info in infos if info.empty]
    if empty and len(empty) == len(infos):
        raise InvestigationProblem(
            EMPTY_LOG_GROUP,
            f"{located.spec_field}: log group {', '.join(empty)} holds no log streams (empty): nothing was ever logged "
            "there; check that the service logs to it, or name the group it does log to",
        )
    return [f"log group {name} is empty (no log streams)" for name in empty]


def insights_query(pattern: filterpattern.FilterPattern, max_events: int) -> str:
    clause = pattern.insights_filter()
    query = "fields @timestamp, @message, @logStream, @log"
    if clause:
        query += f" | filter {clause}"
    return query + f" | sort @timestamp desc | limit {max_events}"


def _series(found: Mapping[str, Any], wanted: list[tuple[Any, sources.AnomalyMetric]],
            resource: str) -> list[MetricSeries]:
    return [MetricSeries(metric.name, resource, metric.statistic, metric.direction, found[query.id].points(),
                         metric.unit) for query, metric in wanted]


def metric_anomalies(runtime: Runtime, access: ProjectAccess, spec: InvestigationSpec,
                     service: sources.ServiceRef | None, window: Window,
                     stats: FetchStats, notes: list[str]) -> list[Anomaly]:
    if not spec.include_metrics or service is None:
        return []
    wanted = service.metric_queries(window.seconds)
    if not wanted:
        notes.append(f"no metrics read: {service.type.value} {service.id} needs its cluster for metrics")
        return []
    client = runtime.aws.client(access.key, spec.environment, "cloudwatch", region=spec.region)
    try:
        found, fetched = fetch_metrics(client, [q for q, _ in wanted], window.start, window.end)
    except (BotoCoreError, ClientError) as exc:  # metrics corroborate: the logs' investigation goes on without
        failure = classify(exc)
        notes.append(f"metrics not read ({failure.summary}): {failure.fix}")
        return []
    stats.add(fetched)
    return find_all(_series(found, wanted, service.id))


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def changes_in(runtime: Runtime, namespace: str, access: ProjectAccess, spec: InvestigationSpec,
               window: Window) -> list[Change]:
    """Deployments (InfraDeployment applies) and remediations from shortly before the window to its end."""
    if not spec.include_deployments:
        return []
    earliest = window.start - DEPLOYMENT_LOOKBACK
    found = [
        Change(d.applied_at, "deployment", d.name, f"plan {d.plan_id}" if d.plan_id else "")
        for d in registry_view.applied_deployments(runtime.kube, namespace, access.name, access.namespace,
                                                   spec.environment)
        if earliest <= d.applied_at <= window.end
    ]
    seen: set[str] = set()
    for entry in remediation_log.read_entries(runtime.kube, access.namespace, access.name):
        at = _moment(entry.get("startedAt") or entry.get("completedAt"))
        if at is None or entry.get("environment") != spec.environment or not earliest <= at <= window.end:
            continue
        seen.add(str(entry.get("uid")))
        found.append(Change(at, "remediation", f"{entry.get('namespace')}/{entry.get('name')}",
                            f"{entry.get('action')} {entry.get('target')}: {entry.get('outcome')}"))
    found += _live_remediations(runtime.kube, namespace, access, spec.environment, earliest, window.end, seen)
    return sorted(found, key=lambda c: c.at)


def _live_remediations(api: ApiClient, namespace: str, access: ProjectAccess, environment: str,
                       earliest: datetime, end: datetime, seen: set[str]) -> list[Change]:
    """Remediations not in the log yet (still acting or verifying)."""
    try:
        listing = CustomObjectsApi(api).list_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, REMEDIATION_KIND.plural, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status in (403, 404):
            return []
        raise
    assert isinstance(listing, dict)
    found = []
    for item in listing.get("items") or []:
        meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
        ref = spec.get("projectRef") or {}
        if meta.get("uid") in seen or ref.get("name") != access.name or spec.get("environment") != environment:
            continue
        at = _moment((status.get("actionResult") or {}).get("startedAt"))
        if at is None or not earliest <= at <= end:
            continue
        target = (spec.get("target") or {}).get("id")
        found.append(Change(at, "remediation", f"{meta.get('namespace', namespace)}/{meta.get('name')}",
                            f"{spec.get('action')} {target}: {status.get('phase')}"))
    return found


def run(runtime: Runtime, body: Mapping[str, Any], spec: InvestigationSpec, access: ProjectAccess,
        now: datetime) -> RunResult:
    metadata = body.get("metadata") or {}
    namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
    try:
        window = resolve(spec.timeframe, now)
    except TimeframeError as exc:
        raise InvestigationProblem(TIMEFRAME_IN_FUTURE, str(exc)) from None
    query_mode = spec.mode == InvestigationMode.QUERY
    try:
        pattern = (filterpattern.parse(spec.filter_pattern) if spec.filter_pattern or query_mode
                   else filterpattern.default_pattern())
    except filterpattern.FilterPatternError as exc:
        raise InvestigationProblem(INVALID_FILTER, f"spec.filterPattern: {exc}") from None

    calls = aws_logs.LogCalls()
    region = spec.region or access.environment.region or access.spec.aws.region
    client = runtime.aws.client(access.key, spec.environment, "logs", region=spec.region)
    located = locate(runtime, client, namespace, access, spec, calls)
    notes = check_log_groups(client, located, window, now, calls, region)
    if window.capped:
        notes.append(f"the timeframe ends after now: searched until {rfc3339(window.end)}")

    rows: list[dict[str, str]] = []
    if spec.use_insights:
        query = spec.insights_query or insights_query(pattern, spec.max_events)
        result = aws_logs.insights_events(client, located.log_groups, window.start, window.end, query,
                                          spec.max_events, calls)
        events = result.events if spec.insights_query else [e for e in result.events if pattern.matches(e.message)]
        truncated, rows, source = result.truncated, result.rows, "Logs Insights"
        if result.status != "Complete":
            notes.append(f"the Logs Insights query ended {result.status}: the results may be incomplete")
            truncated = True
    else:
        search = aws_logs.filter_events(client, located.log_groups, window.start, window.end, pattern.text,
                                        spec.max_events, pattern.matches, calls)
        events, truncated, source = search.events, search.truncated, "FilterLogEvents"
    if not pattern.exact:
        notes.append("the filter pattern is JSON or space-delimited: AWS evaluates it; it is not re-applied locally")
    if rows:
        notes.append(f"{len(rows)} result row(s) without @message (a stats query) are in the report's notes only")

    stats = FetchStats()
    findings = Findings(
        name=name, namespace=namespace, environment=spec.environment, mode=str(spec.mode), source=source,
        log_groups=located.log_groups, window=window, filter_pattern=pattern.text, match_count=len(events),
        truncated=truncated, service=spec.service, notes=notes,
    )
    clustering: Clustering | None = None
    if query_mode:
        findings.matches = events
    else:
        clustering = cluster(events)
        anomalies = metric_anomalies(runtime, access, spec, located.service, window, stats, notes)
        changes = changes_in(runtime, namespace, access, spec, window)
        service = Service(located.service.type, located.service.id) if located.service else None
        findings.clustering = clustering
        findings.anomalies = anomalies
        findings.diagnosis = diagnose(clustering.patterns, anomalies, changes, service)
        findings.timeline = build(clustering.patterns, anomalies, changes)

    api_calls = InvestigationApiCalls(
        filter_log_events=calls.filter_log_events, start_query=calls.start_query,
        get_query_results=calls.get_query_results, get_metric_data=stats.requests,
        describe=calls.describe_log_groups + calls.describe_log_streams,
        total=calls.total + stats.requests, throttled=calls.retries + stats.retries,
        bytes_scanned=int(calls.bytes_scanned),
        estimated_cost_usd=round(calls.estimated_cost_usd + stats.estimated_cost_usd, 6),
    )
    findings.api_calls = api_calls.to_wire()
    report = build_report(findings)
    if rows:
        report["statsRows"] = rows[:max_items(InvestigationStatus, "patterns")]
    ConfigMapDocument(runtime.kube, namespace, report_name(name), REPORT_JSON, owner=body,
                      labels={"devops.fractary.io/investigation": name[:63]},
                      render=lambda document: {REPORT_MARKDOWN: render_markdown(document)}).update(lambda _: report)
    return RunResult(_status(spec, findings, clustering, api_calls, name, now), _message(findings), report)


def _status(spec: InvestigationSpec, findings: Findings, clustering: Clustering | None,
            api_calls: InvestigationApiCalls, name: str, now: datetime) -> InvestigationStatus:
    status = InvestigationStatus(
        log_groups=findings.log_groups, window_start=rfc3339(findings.window.start),
        window_end=rfc3339(findings.window.end), match_count=findings.match_count, truncated=findings.truncated,
        report_config_map=report_name(name), api_calls=api_calls, completed_at=rfc3339(now),
    )
    if clustering is None:
        return status
    limit = min(spec.max_patterns, max_items(InvestigationStatus, "patterns"))
    status.patterns = [
        ErrorPattern(signature=redact(p.signature), count=p.count, first_seen=_ms(p.first_seen),
                     last_seen=_ms(p.last_seen), example=redact(p.example), log_group=p.log_group)
        for p in clustering.patterns[:limit]
    ]
    status.patterns_truncated = clustering.distinct > limit
    timeline = findings.timeline
    if timeline is not None:
        status.timeline = TimelineSummary(
            total=len(timeline.entries), log_patterns=timeline.count(EntryKind.LOG_PATTERN),
            metric_anomalies=timeline.count(EntryKind.METRIC_ANOMALY),
            deployments=timeline.count(EntryKind.DEPLOYMENT), remediations=timeline.count(EntryKind.REMEDIATION),
        )
    diagnosis = findings.diagnosis
    if diagnosis is not None:
        evidence, _ = bounded(ProbableCause, "evidence", [redact(e) for e in diagnosis.evidence])
        status.probable_cause = ProbableCause(summary=diagnosis.summary, confidence=diagnosis.confidence,
                                              signature=redact(diagnosis.signature or "") or None, evidence=evidence)
        status.recommendations, _ = bounded(InvestigationStatus, "recommendations", diagnosis.recommendations)
    return status


def _ms(epoch_ms: int) -> str:
    return rfc3339(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


def _message(findings: Findings) -> str:
    groups = len(findings.log_groups)
    head = (f"{findings.match_count} matching event(s) in {groups} log group(s)"
            + (" (stopped at maxEvents: truncated)" if findings.truncated else ""))
    if findings.mode == "query":
        return head
    patterns = findings.clustering.distinct if findings.clustering else 0
    diagnosis = findings.diagnosis
    cause = (f"; probable cause ({diagnosis.confidence.value} confidence): {diagnosis.summary}"
             if diagnosis is not None else "; no matching events, so no cause")
    return f"{head}, {patterns} pattern(s){cause}"
