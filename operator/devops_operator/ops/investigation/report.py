"""The Investigation report: JSON (report.json) and Markdown (report.md) for one ConfigMap.

A ConfigMap holds at most 1 MiB, so the report is fitted to a byte budget before it is written: the
longest lists (query matches, then patterns) are cut down, and the report says how many were left out.
Nothing secret reaches it: every log line is redacted (kube/redaction.py) before it is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devops_operator.kube.conditions import rfc3339
from devops_operator.kube.redaction import redact
from devops_operator.ops.investigation.anomalies import Anomaly
from devops_operator.ops.investigation.causes import Diagnosis
from devops_operator.ops.investigation.patterns import Clustering, LogEvent
from devops_operator.ops.investigation.timeframe import Window
from devops_operator.ops.investigation.timeline import Timeline

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
# Both keys share the ConfigMap: each gets a part of the store's budget.
JSON_BUDGET = 560_000
MARKDOWN_ROWS = 50
MAX_MATCH_CHARS = 2000


@dataclass
class Findings:
    """Everything one run found, as plain data."""

    name: str
    namespace: str
    environment: str
    mode: str
    source: str  # "FilterLogEvents" or "Logs Insights"
    log_groups: list[str]
    window: Window
    filter_pattern: str
    match_count: int
    truncated: bool
    service: str | None = None
    clustering: Clustering | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    timeline: Timeline | None = None
    diagnosis: Diagnosis | None = None
    matches: list[LogEvent] = field(default_factory=list)
    api_calls: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _at(epoch_ms: int) -> str:
    return rfc3339(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC), micro=True)


def _match(event: LogEvent) -> dict[str, Any]:
    message = redact(event.message)
    if len(message) > MAX_MATCH_CHARS:
        message = message[: MAX_MATCH_CHARS - 1] + "…"
    return {"timestamp": _at(event.timestamp), "logGroup": event.log_group, "logStream": event.log_stream,
            "message": message}


def build_report(findings: Findings, *, budget: int = JSON_BUDGET) -> dict[str, Any]:
    """The report as JSON-ready data, cut down to fit `budget` bytes of JSON."""
    patterns = findings.clustering.patterns if findings.clustering else []
    report: dict[str, Any] = {
        "investigation": {"namespace": findings.namespace, "name": findings.name},
        "environment": findings.environment,
        "service": findings.service,
        "mode": findings.mode,
        "source": findings.source,
        "logGroups": findings.log_groups,
        "window": {"start": rfc3339(findings.window.start), "end": rfc3339(findings.window.end)},
        "filterPattern": findings.filter_pattern,
        "matchCount": findings.match_count,
        "truncated": findings.truncated,
        "apiCalls": findings.api_calls,
        "notes": findings.notes,
    }
    if findings.mode == "query":
        report["matches"] = [_match(e) for e in findings.matches]
    else:
        report["patterns"] = [
            {"signature": redact(p.signature), "count": p.count, "firstSeen": _at(p.first_seen),
             "lastSeen": _at(p.last_seen), "example": redact(p.example), "logGroup": p.log_group}
            for p in patterns
        ]
        report["unclusteredEvents"] = findings.clustering.unclustered if findings.clustering else 0
        report["metricAnomalies"] = [
            {"metric": a.metric, "resource": a.resource, "direction": a.direction.value, "start": rfc3339(a.start),
             "end": rfc3339(a.end), "peak": a.peak, "peakAt": rfc3339(a.peak_at), "baseline": a.baseline,
             "datapoints": a.points}
            for a in findings.anomalies
        ]
        report["timeline"] = [e.to_json() for e in findings.timeline.entries] if findings.timeline else []
        report["timelineTruncated"] = bool(findings.timeline and findings.timeline.truncated)
        diagnosis = findings.diagnosis
        report["probableCause"] = None if diagnosis is None else {
            "id": diagnosis.cause_id, "summary": diagnosis.summary, "confidence": diagnosis.confidence.value,
            "signature": redact(diagnosis.signature or ""), "evidence": [redact(e) for e in diagnosis.evidence],
            "candidates": [{"cause": c, "events": n} for c, n in diagnosis.candidates],
        }
        report["recommendations"] = diagnosis.recommendations if diagnosis else []
    return _fit(report, budget)


def _size(report: dict[str, Any]) -> int:
    return len(json.dumps(report, separators=(",", ":"), ensure_ascii=False).encode())


def _fit(report: dict[str, Any], budget: int) -> dict[str, Any]:
    for key in ("matches", "patterns", "timeline"):
        items: list[Any] = report.get(key) or []
        kept = len(items)
        while kept and _size(report) > budget:
            kept //= 2
            report[key] = items[:kept]
        if kept < len(items):
            report[f"{key}Omitted"] = len(items) - kept
    return report


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the same findings for people (tables bounded to the first rows)."""
    inv = report["investigation"]
    service = f", service: {report['service']}" if report.get("service") else ""
    truncated = " (stopped at maxEvents: truncated)" if report["truncated"] else ""
    lines = [
        f"# Investigation {inv['namespace']}/{inv['name']}",
        "",
        f"- environment: {report['environment']}{service}",
        f"- window: {report['window']['start']} to {report['window']['end']}",
        f"- log groups: {', '.join(report['logGroups'])}",
        f"- searched with {report['source']}, filter `{report['filterPattern'] or '(every event)'}`",
        f"- matching events: {report['matchCount']}{truncated}",
    ]
    lines += [f"- note: {note}" for note in report.get("notes") or []]
    cause = report.get("probableCause")
    if cause:
        lines += ["", "## Probable cause", "", f"**{cause['summary']}** (confidence: {cause['confidence']})", ""]
        lines += [f"- {_cell(e)}" for e in cause["evidence"]]
    if report.get("recommendations"):
        lines += ["", "## Recommendations", ""]
        lines += [f"{i}. {r}" for i, r in enumerate(report["recommendations"], 1)]
    _table(lines, "Error patterns", ["count", "first seen", "last seen", "signature"],
           [[p["count"], p["firstSeen"], p["lastSeen"], f"`{p['signature']}`"] for p in report.get("patterns") or []])
    _table(lines, "Timeline", ["at", "kind", "what"],
           [[e["at"], e["kind"], e["summary"]] for e in report.get("timeline") or []])
    _table(lines, "Matches", ["timestamp", "log group", "message"],
           [[m["timestamp"], m["logGroup"], f"`{m['message']}`"] for m in report.get("matches") or []])
    calls = report.get("apiCalls") or {}
    if calls:
        lines += ["", "## AWS API calls", ""]
        lines += [f"- {key}: {value}" for key, value in calls.items()]
    return "\n".join(lines) + "\n"


def _table(lines: list[str], title: str, header: Sequence[str], rows: list[list[Any]]) -> None:
    if not rows:
        return
    lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows[:MARKDOWN_ROWS]]
    if len(rows) > MARKDOWN_ROWS:
        lines.append(f"\n({len(rows) - MARKDOWN_ROWS} more in report.json)")
