"""CloudWatch Logs reads: log groups, FilterLogEvents (paged, bounded) and Logs Insights (polled, bounded).

Every request sent is counted in a `LogCalls` (per run, so a status can report its own calls exactly),
with the retries botocore made (from each response's `RetryAttempts`) and the bytes Insights scanned
(what it bills, $0.005 per GB; moto reports no statistics, so against moto it is 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devops_operator.ops.investigation.patterns import LogEvent

PAGE_LIMIT = 10_000  # FilterLogEvents returns at most 10,000 events per page
MAX_PAGES = 1_000  # AWS may answer a page with no events and a token while it searches: never loop forever
INSIGHTS_MAX_LOG_GROUPS = 50
INSIGHTS_MAX_ROWS = 10_000
INSIGHTS_TIMEOUT_SECONDS = 60.0
INSIGHTS_DONE = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
USD_PER_GB_SCANNED = 0.005


@dataclass
class LogCalls:
    describe_log_groups: int = 0
    describe_log_streams: int = 0
    filter_log_events: int = 0
    start_query: int = 0
    get_query_results: int = 0
    stop_query: int = 0
    retries: int = 0
    bytes_scanned: float = 0.0

    @property
    def total(self) -> int:
        return (self.describe_log_groups + self.describe_log_streams + self.filter_log_events + self.start_query
                + self.get_query_results + self.stop_query)

    @property
    def estimated_cost_usd(self) -> float:
        return round(self.bytes_scanned / 1e9 * USD_PER_GB_SCANNED, 6)

    def count(self, operation: str, response: Mapping[str, Any]) -> None:
        setattr(self, operation, getattr(self, operation) + 1)
        self.retries += int((response.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)


@dataclass(frozen=True)
class LogGroupInfo:
    name: str
    exists: bool
    retention_days: int | None = None
    stored_bytes: int | None = None
    empty: bool = False  # exists but holds no log stream at all


def describe_log_group(client: Any, name: str, calls: LogCalls) -> LogGroupInfo:
    """Whether the group exists, its retention, and whether it holds any stream (two requests at most)."""
    token: str | None = None
    found: Mapping[str, Any] | None = None
    for _ in range(MAX_PAGES):
        request: dict[str, Any] = {"logGroupNamePrefix": name, "limit": 50}
        if token:
            request["nextToken"] = token
        response = client.describe_log_groups(**request)
        calls.count("describe_log_groups", response)
        found = next((g for g in response.get("logGroups") or [] if g.get("logGroupName") == name), None)
        token = response.get("nextToken")
        if found is not None or not token:
            break
    if found is None:
        return LogGroupInfo(name=name, exists=False)
    streams = client.describe_log_streams(logGroupName=name, limit=1)
    calls.count("describe_log_streams", streams)
    return LogGroupInfo(
        name=name, exists=True, retention_days=found.get("retentionInDays"),
        stored_bytes=found.get("storedBytes"), empty=not streams.get("logStreams"),
    )


@dataclass
class SearchResult:
    events: list[LogEvent]
    truncated: bool  # maxEvents stopped the search while more events were there


def filter_events(
    client: Any,
    log_groups: Sequence[str],
    start: datetime,
    end: datetime,
    filter_pattern: str,
    max_events: int,
    keep: Callable[[str], bool],
    calls: LogCalls,
) -> SearchResult:
    """Matching events of every group, in the groups' order, until `max_events` are kept.

    `keep` re-applies the pattern locally (moto evaluates only part of the syntax); a page is as large
    as the events still wanted, so AWS sends no more than the search needs.
    """
    events: list[LogEvent] = []
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def done(truncated: bool) -> SearchResult:
        events.sort(key=lambda e: (e.timestamp, e.log_group))
        return SearchResult(events, truncated)

    for group_index, group in enumerate(log_groups):
        token: str | None = None
        for _ in range(MAX_PAGES):
            request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "endTime": end_ms,
                                       "limit": min(PAGE_LIMIT, max_events)}
            if filter_pattern:
                request["filterPattern"] = filter_pattern
            if token:
                request["nextToken"] = token
            response = client.filter_log_events(**request)
            calls.count("filter_log_events", response)
            for raw in response.get("events") or []:
                message = str(raw.get("message") or "")
                if not keep(message):
                    continue
                if len(events) >= max_events:
                    return done(True)  # one matching event more than maxEvents keeps
                events.append(LogEvent(int(raw.get("timestamp") or 0), message, group,
                                       str(raw.get("logStreamName") or "")))
            token = response.get("nextToken")
            if not token:
                break
            if len(events) >= max_events:
                return done(True)  # full, with pages left unread
        if len(events) >= max_events and group_index + 1 < len(log_groups):
            return done(True)  # full, with log groups left unread
    return done(False)


def _timestamp(value: str) -> int:
    """Insights' @timestamp: `2024-01-02 03:04:05.678` (UTC) from AWS, epoch milliseconds from moto."""
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _group_name(value: str) -> str:
    # AWS writes @log as `<account>:<log group>`.
    head, sep, tail = value.partition(":")
    return tail if sep and head.isdigit() else value


@dataclass
class InsightsResult:
    events: list[LogEvent]
    rows: list[dict[str, str]]  # rows without a @message (a `stats` query), kept for the report
    truncated: bool
    status: str


def insights_events(
    client: Any,
    log_groups: Sequence[str],
    start: datetime,
    end: datetime,
    query: str,
    max_events: int,
    calls: LogCalls,
    *,
    timeout: float = INSIGHTS_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> InsightsResult:
    """Run one Logs Insights query and poll it until it ends (or `timeout`, then it is stopped)."""
    limit = min(max_events, INSIGHTS_MAX_ROWS)
    started = client.start_query(logGroupNames=list(log_groups[:INSIGHTS_MAX_LOG_GROUPS]),
                                 startTime=int(start.timestamp()), endTime=int(end.timestamp()),
                                 queryString=query, limit=limit)
    calls.count("start_query", started)
    query_id = started["queryId"]
    deadline, pause = clock() + timeout, 0.2
    while True:
        response = client.get_query_results(queryId=query_id)
        calls.count("get_query_results", response)
        status = str(response.get("status") or "Unknown")
        if status in INSIGHTS_DONE:
            break
        if clock() >= deadline:
            stopped = client.stop_query(queryId=query_id)
            calls.count("stop_query", stopped)
            status = "Timeout"
            break
        sleep(pause)
        pause = min(pause * 2, 2.0)
    calls.bytes_scanned += float((response.get("statistics") or {}).get("bytesScanned") or 0.0)
    events: list[LogEvent] = []
    rows: list[dict[str, str]] = []
    for row in response.get("results") or []:
        fields = {str(f.get("field")): str(f.get("value") or "") for f in row}
        if "@message" in fields:
            events.append(LogEvent(_timestamp(fields.get("@timestamp") or "0"), fields["@message"],
                                   _group_name(fields.get("@log") or (log_groups[0] if len(log_groups) == 1 else "")),
                                   fields.get("@logStream", "")))
        else:
            rows.append({k: v for k, v in fields.items() if k != "@ptr"})
    events.sort(key=lambda e: (e.timestamp, e.log_group))
    return InsightsResult(events, rows, len(events) + len(rows) >= limit, status)
