"""A check's result as data people and tools read (pure): the report document, its Markdown, the status.

- `report_document(result, previous, ...)`: every resource, metric and trend of one check, with each
  resource's `since`/`consecutive` carried over from the previous report (so transitions are known for
  every resource, not only the hundred the status holds);
- `render_markdown(document)`: the same for people (`report.md` next to `report.json`);
- `shrink(document, overflow)`: what to drop when the report would not fit its ConfigMap (details of
  healthy resources first, never the verdicts);
- `status_fields(...)`: the HealthCheck's status from the stored report, lists bounded worst first.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from devops_operator.api.common import bounded
from devops_operator.api.healthcheck import (
    HealthApiCalls,
    HealthCheckStatus,
    HistoryEntry,
    MetricResult,
    ResourceHealth,
    SloBurnRate,
    SloStatus,
    TargetsSummary,
    Verdict,
    VerdictCounts,
)
from devops_operator.ops.health.evaluate import MetricVerdict, format_value
from devops_operator.ops.health.performance import Trend
from devops_operator.ops.health.service import CheckResult, ResourceResult, SloOutcome
from devops_operator.ops.health.slo import ALERT_WINDOWS
from devops_operator.ops.health.windows import TimeWindow, rfc3339

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
MARKDOWN_RESOURCES = 200  # rows of the resource table; the JSON has every resource
MARKDOWN_DETAILS = 50  # resources whose metrics are spelled out, worst first
STATUS_BYTES = 256 * 1024  # what status.resources may take of the object (etcd's limit is 1.5 MiB)


def report_name(healthcheck: str) -> str:
    return f"{healthcheck[:238]}-health-report"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _window(window: TimeWindow | None) -> dict[str, str] | None:
    return None if window is None else {"start": rfc3339(window.start), "end": rfc3339(window.end)}


def _trend(trend: Trend | None) -> dict[str, Any] | None:
    if trend is None:
        return None
    found: dict[str, Any] = {
        "current": _round(trend.current), "previous": _round(trend.previous),
        "changePercent": trend.change_percent, "direction": trend.direction,
    }
    if trend.assessment:
        found["assessment"] = trend.assessment
    if trend.percentiles:
        found["percentiles"] = [
            {"statistic": p.statistic, "current": _round(p.current), "previous": _round(p.previous)}
            for p in trend.percentiles
        ]
    return found


def _metric(verdict: MetricVerdict, trend: Trend | None, period: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": verdict.name, "verdict": str(verdict.verdict), "reason": verdict.reason,
        "value": _round(verdict.value), "threshold": verdict.threshold,
        "comparison": str(verdict.comparison) if verdict.comparison else None,
        "unit": verdict.unit, "statistic": verdict.statistic, "period": period, "datapoints": verdict.datapoints,
        "trend": _trend(trend),
    }
    return {k: v for k, v in found.items() if v is not None}


def _resource(resource: ResourceResult, at: str, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    target, verdict = resource.target, resource.verdict
    trends = {t.metric: t for t in resource.trends}
    periods = {m.name: m.period for m in resource.metrics}
    same = previous is not None and previous.get("verdict") == str(verdict.verdict)
    found: dict[str, Any] = {
        "name": target.name, "id": target.id, "type": str(target.type), "region": target.region,
        "cluster": target.cluster, "stage": target.stage, "source": target.field or None,
        "verdict": str(verdict.verdict), "decidedBy": verdict.decided_by, "reasons": list(verdict.reasons),
        "since": (previous or {}).get("since", at) if same else at,
        "consecutive": int((previous or {}).get("consecutive", 0)) + 1 if same else 1,
        "metrics": [_metric(m, trends.get(m.name), periods.get(m.name)) for m in verdict.metrics],
    }
    return {k: v for k, v in found.items() if v is not None}


def _slo(outcome: SloOutcome) -> dict[str, Any]:
    result = outcome.result
    found: dict[str, Any] = {
        "name": outcome.spec.name, "target": outcome.target, "metric": outcome.spec.metric,
        "objective": outcome.spec.objective, "window": outcome.spec.window, "period": outcome.period,
        "sli": _round(result.sli), "errorBudgetRemaining": _round(result.error_budget_remaining),
        "burnRates": {name: _round(rate) for name, rate in result.burn_rates.items()},
        "alert": str(result.alert) if result.alert else None, "goodDatapoints": result.good,
        "totalDatapoints": result.total, "message": result.message,
    }
    return {k: v for k, v in found.items() if v is not None}


def api_calls(result: CheckResult) -> dict[str, Any]:
    return HealthApiCalls(
        get_metric_data=result.fetch.requests,
        total=result.requests,
        retries=result.retries,
        metrics_requested=result.fetch.metrics_requested,
        estimated_cost_usd=result.fetch.estimated_cost_usd,
        cpu_seconds=round(result.cpu_seconds, 4),
        duration_seconds=round(result.duration_seconds, 3),
    ).to_wire() | {"byOperation": dict(sorted(result.calls.calls.items()))}


def report_document(result: CheckResult, previous: Any, *, healthcheck: str, at: str,
                    targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report of one check; `previous` is the report stored before it (None the first time)."""
    before = {}
    if isinstance(previous, dict):
        before = {r.get("name"): r for r in previous.get("resources") or [] if isinstance(r, dict)}
    return {
        "healthCheck": healthcheck,
        "checkedAt": at,
        "verdict": str(result.verdict),
        "counts": result.counts(),
        "window": _window(result.window),
        "previousWindow": _window(result.previous),
        "apiCalls": api_calls(result),
        "targets": dict(targets or {}),
        "resources": [_resource(r, at, before.get(r.target.name)) for r in result.resources],
        "resourcesTruncated": False,
        "slos": [_slo(o) for o in result.slos],
    }


def shrink(document: Any, overflow: int) -> Any:
    """A smaller report: metric details of the healthiest resources go first, then whole resources."""
    smaller = copy.deepcopy(document)
    resources = smaller.get("resources") or []
    freed = 0
    for resource in reversed(resources):  # healthiest last in the list: dropped first
        if freed >= overflow:
            return smaller
        if resource.get("metrics"):
            freed += len(json.dumps(resource["metrics"]))
            resource["metrics"] = []
            resource["metricsDropped"] = True
    while resources and freed < overflow:
        freed += len(json.dumps(resources.pop()))
        smaller["resourcesTruncated"] = True
    return smaller


# --- Markdown ----------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


NONE = "-"


def _number(value: Any, unit: str | None = None) -> str:
    return NONE if value is None else format_value(float(value), unit)


def render_markdown(document: Mapping[str, Any]) -> dict[str, str]:
    """`report.md`: summary, resources worst first, the performance analysis, SLOs and the AWS bill."""
    counts = document.get("counts") or {}
    calls = document.get("apiCalls") or {}
    window = document.get("window") or {}
    lines = [
        f"# Health report: {document.get('healthCheck')}",
        "",
        f"**{document.get('verdict')}** at {document.get('checkedAt')}, window {window.get('start')} to "
        f"{window.get('end')}.",
        "",
        "| verdict | resources |", "|---|---:|",
        *(f"| {v} | {counts.get(str(v), 0)} |" for v in Verdict),
        "",
        f"AWS: {calls.get('total', 0)} requests ({calls.get('getMetricData', 0)} GetMetricData, "
        f"{calls.get('metricsRequested', 0)} metrics, {calls.get('retries', 0)} retries), "
        f"${calls.get('estimatedCostUsd', 0.0):.6f} at list price; operator CPU {calls.get('cpuSeconds', 0.0)} s.",
        "",
        "## Resources",
        "",
        "| resource | type | verdict | decided by | since | checks |",
        "|---|---|---|---|---|---:|",
    ]
    resources = list(document.get("resources") or [])
    for resource in resources[:MARKDOWN_RESOURCES]:
        reason = (resource.get("reasons") or [""])[0]
        lines.append(f"| {_cell(resource.get('name'))} | {resource.get('type')} | {resource.get('verdict')} | "
                     f"{_cell(reason)} | {resource.get('since')} | {resource.get('consecutive')} |")
    if len(resources) > MARKDOWN_RESOURCES or document.get("resourcesTruncated"):
        lines.append(f"\n{len(resources) - min(len(resources), MARKDOWN_RESOURCES)} more in report.json"
                     + (" (some dropped to fit)" if document.get("resourcesTruncated") else "") + ".")
    previous = document.get("previousWindow") or {}
    lines += ["", "## Performance: this window against the previous one", ""]
    if previous:
        lines.append(f"Previous window {previous.get('start')} to {previous.get('end')}.")
        lines.append("")
    lines += ["| resource | metric | now | before | change | trend | percentiles now (before) |",
              "|---|---|---:|---:|---:|---|---|"]
    for resource in resources[:MARKDOWN_DETAILS]:
        for metric in resource.get("metrics") or []:
            trend = metric.get("trend") or {}
            unit = metric.get("unit")
            change = trend.get("changePercent")
            percentiles = ", ".join(
                f"{p['statistic']} {_number(p.get('current'), unit)} ({_number(p.get('previous'), unit)})"
                for p in trend.get("percentiles") or []) or NONE
            movement = trend.get("direction", "")
            if trend.get("assessment"):
                movement += f", {trend['assessment']}"
            lines.append(
                f"| {_cell(resource.get('name'))} | {metric.get('name')} | {_number(trend.get('current'), unit)} | "
                f"{_number(trend.get('previous'), unit)} | {NONE if change is None else f'{change:+.1f} %'} | "
                f"{movement} | {percentiles} |")
    slos = document.get("slos") or []
    if slos:
        lines += ["", "## SLOs", "",
                  "| SLO | target | objective | SLI | budget left | burn 5m / 30m / 1h / 6h | alert |",
                  "|---|---|---:|---:|---:|---|---|"]
        for item in slos:
            rates = item.get("burnRates") or {}
            burns = " / ".join(_number(rates.get(name)) for name, _ in ALERT_WINDOWS)
            budget = _number(item.get("errorBudgetRemaining"), "Percent")
            lines.append(f"| {item.get('name')} | {_cell(item.get('target'))} | {item.get('objective')} % | "
                         f"{_number(item.get('sli'), 'Percent')} | {budget} | {burns} | "
                         f"{item.get('alert') or item.get('message') or 'none'} |")
    return {REPORT_MARKDOWN: "\n".join(lines) + "\n"}


# --- status ------------------------------------------------------------------------------------------


def _status_resource(entry: Mapping[str, Any]) -> ResourceHealth:
    metrics = [
        MetricResult(name=m["name"], verdict=m["verdict"], value=m.get("value"), threshold=m.get("threshold"),
                     comparison=m.get("comparison"), unit=m.get("unit"), statistic=m.get("statistic"),
                     datapoints=m.get("datapoints", 0))
        for m in (entry.get("metrics") or [])
    ]
    kept_metrics, _ = bounded(ResourceHealth, "metrics", metrics)
    reasons, _ = bounded(ResourceHealth, "reasons", list(entry.get("reasons") or []))
    return ResourceHealth(
        id=entry["id"], name=entry["name"] if entry["name"] != entry["id"] else None, type=entry["type"],
        region=entry.get("region"), verdict=entry["verdict"], reasons=reasons, metrics=kept_metrics,
        since=entry.get("since"), consecutive=entry.get("consecutive", 1),
    )


def fit_resources(resources: Sequence[ResourceHealth], budget: int = STATUS_BYTES) -> tuple[list[ResourceHealth], bool]:
    """Resources for status: at most maxItems, worst first, within a byte budget (healthy details go first)."""
    kept, truncated = bounded(HealthCheckStatus, "resources", list(resources))
    size = sum(len(json.dumps(r.to_wire())) for r in kept)
    for index in range(len(kept) - 1, -1, -1):
        if size <= budget:
            break
        if kept[index].metrics:
            before = len(json.dumps(kept[index].to_wire()))
            kept[index] = kept[index].model_copy(update={"metrics": []})
            size -= before - len(json.dumps(kept[index].to_wire()))
    while kept and size > budget:
        size -= len(json.dumps(kept.pop().to_wire()))
        truncated = True
    return kept, truncated


def _slo_status(item: Mapping[str, Any]) -> SloStatus:
    rates = item.get("burnRates") or {}
    return SloStatus(
        name=item["name"], target=item.get("target"), objective=item["objective"], sli=item.get("sli"),
        error_budget_remaining=item.get("errorBudgetRemaining"), burn_rate=rates.get("1h"),
        burn_rates=[SloBurnRate(window=name, burn_rate=rates.get(name)) for name, _ in ALERT_WINDOWS],
        alert=item.get("alert"), window=item.get("window"), period=item.get("period"),
        good_datapoints=item.get("goodDatapoints", 0), total_datapoints=item.get("totalDatapoints", 0),
        message=item.get("message"),
    )


def status_fields(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]], history_limit: int,
                  targets: TargetsSummary, report_config_map: str, next_check: str | None) -> dict[str, Any]:
    """The status of a check from its stored report (lists bounded and flagged, worst first)."""
    counts = report.get("counts") or {}
    resources, truncated = fit_resources([_status_resource(r) for r in report.get("resources") or []])
    entry = HistoryEntry(at=report["checkedAt"], verdict=report["verdict"],
                         unhealthy=counts.get("UNHEALTHY", 0) + counts.get("NOT_FOUND", 0),
                         degraded=counts.get("DEGRADED", 0))
    past = [HistoryEntry.model_validate(h) for h in history][: max(history_limit - 1, 0)]
    slos, _ = bounded(HealthCheckStatus, "slos", [_slo_status(s) for s in report.get("slos") or []])
    calls = {k: v for k, v in (report.get("apiCalls") or {}).items() if k != "byOperation"}
    return {
        "verdict": report["verdict"],
        "counts": VerdictCounts(
            total=sum(counts.values()), healthy=counts.get("HEALTHY", 0), degraded=counts.get("DEGRADED", 0),
            unhealthy=counts.get("UNHEALTHY", 0), no_data=counts.get("NO_DATA", 0),
            not_found=counts.get("NOT_FOUND", 0),
        ).to_wire(),
        "resources": [r.to_wire() for r in resources],
        "resourcesTruncated": truncated or bool(report.get("resourcesTruncated")),
        "slos": [s.to_wire() for s in slos],
        "targets": targets.to_wire(),
        "apiCalls": HealthApiCalls.model_validate(calls).to_wire(),
        "lastCheck": report["checkedAt"],
        "nextCheck": next_check,
        "history": [h.to_wire() for h in ([entry, *past] if history_limit > 0 else [])],
        "report": report_config_map,
    }

