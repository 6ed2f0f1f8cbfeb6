"""Batched CloudWatch GetMetricData: the one way the operator reads metrics.

Every feature that reads metrics (HealthCheck, Investigation's anomalies, Remediation's verification,
CostAudit's right-sizing) goes through `fetch_metrics`, so that:

- queries are sent at most `MAX_QUERIES_PER_CALL` (500, AWS's limit) per request, never one call per
  metric; the limit is enforced here because moto does not enforce it;
- NextToken pages are followed, and every request sent is counted (`FetchStats`), as is what it costs at
  AWS's list price ($0.01 per 1,000 metrics requested; every request bills the metrics it names, pages
  included), so a check can report its own AWS bill;
- throttling is retried by botocore's adaptive retry mode (the session factory configures it) and the
  retries are counted from each response's `RetryAttempts`.

Only raw series come back (`MetricStat`, no metric math): rates and percent are computed by the caller in
Python, so the same code runs against moto and AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800  # AWS returns at most this many datapoints per request
USD_PER_METRIC_REQUESTED = 0.01 / 1000
QUERY_ID_PATTERN = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class MetricQuery:
    """One metric series to read: namespace, name, dimensions, statistic, period and unit."""

    id: str  # unique in one fetch; CloudWatch wants ^[a-z][a-zA-Z0-9_]*$
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"
    period: int = 60
    unit: str | None = None

    def to_request(self) -> dict[str, Any]:
        stat: dict[str, Any] = {
            "Metric": {
                "Namespace": self.namespace,
                "MetricName": self.metric_name,
                "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
            },
            "Period": self.period,
            "Stat": self.stat,
        }
        if self.unit:
            stat["Unit"] = self.unit
        return {"Id": self.id, "MetricStat": stat, "ReturnData": True}


@dataclass
class Series:
    """Datapoints of one query, oldest first."""

    id: str
    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    status: str = "Complete"  # Complete, PartialData, InternalError, Forbidden
    messages: list[str] = field(default_factory=list)

    def points(self) -> list[tuple[datetime, float]]:
        return list(zip(self.timestamps, self.values, strict=True))


@dataclass
class FetchStats:
    """What one fetch cost: requests sent (pages included), metrics billed, retries botocore made."""

    requests: int = 0
    metrics_requested: int = 0
    retries: int = 0

    @property
    def estimated_cost_usd(self) -> float:
        return round(self.metrics_requested * USD_PER_METRIC_REQUESTED, 6)

    def add(self, other: FetchStats) -> None:
        self.requests += other.requests
        self.metrics_requested += other.metrics_requested
        self.retries += other.retries


class MetricQueryError(ValueError):
    """The queries themselves are wrong (a bad or repeated id): a bug or a bad spec, not AWS's answer."""


def batches(queries: Sequence[MetricQuery], size: int = MAX_QUERIES_PER_CALL) -> Iterator[Sequence[MetricQuery]]:
    if not 1 <= size <= MAX_QUERIES_PER_CALL:
        raise ValueError(f"a GetMetricData batch holds 1 to {MAX_QUERIES_PER_CALL} queries, not {size}")
    for start in range(0, len(queries), size):
        yield queries[start:start + size]


def calls_needed(query_count: int) -> int:
    """GetMetricData requests for `query_count` queries when no answer needs a second page: ceil(n/500)."""
    return -(-query_count // MAX_QUERIES_PER_CALL)


def _check(queries: Sequence[MetricQuery]) -> None:
    seen: set[str] = set()
    for query in queries:
        if not QUERY_ID_PATTERN.match(query.id):
            raise MetricQueryError(f"metric query id {query.id!r} must match {QUERY_ID_PATTERN.pattern}")
        if query.id in seen:
            raise MetricQueryError(f"metric query id {query.id!r} is used twice")
        seen.add(query.id)


def _merge(found: dict[str, Series], result: Mapping[str, Any]) -> None:
    series = found.setdefault(result["Id"], Series(id=result["Id"]))
    series.timestamps.extend(result.get("Timestamps") or [])
    series.values.extend(float(v) for v in result.get("Values") or [])
    status = result.get("StatusCode") or "Complete"
    if status != "Complete" or series.status == "Complete":
        series.status = status
    series.messages.extend(m.get("Value", "") for m in result.get("Messages") or [])


def fetch_metrics(
    client: Any, queries: Sequence[MetricQuery], start: datetime, end: datetime
) -> tuple[dict[str, Series], FetchStats]:
    """Every query's series between `start` and `end`: ceil(n/500) requests, plus NextToken pages.

    A query CloudWatch has no data for comes back as an empty series (never missing from the result),
    so callers can tell "no datapoints" from "not asked".
    """
    _check(queries)
    found: dict[str, Series] = {query.id: Series(id=query.id) for query in queries}
    stats = FetchStats()
    for batch in batches(queries):
        request: dict[str, Any] = {
            "MetricDataQueries": [query.to_request() for query in batch],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        while True:
            response = client.get_metric_data(**request)
            stats.requests += 1
            stats.metrics_requested += len(batch)
            stats.retries += int((response.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)
            for result in response.get("MetricDataResults") or []:
                _merge(found, result)
            token = response.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
    for series in found.values():  # pages may interleave: keep every series oldest first
        if series.timestamps and any(a > b for a, b in zip(series.timestamps, series.timestamps[1:], strict=False)):
            ordered = sorted(zip(series.timestamps, series.values, strict=True))
            series.timestamps = [t for t, _ in ordered]
            series.values = [v for _, v in ordered]
    return found, stats
