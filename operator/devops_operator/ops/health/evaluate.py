"""Verdicts per metric, per resource and overall, from plain datapoints (pure).

Per metric, as CloudWatch alarms judge: each datapoint of the window is compared with the critical and
the warning threshold; a level is breached when at least `datapointsToBreach` datapoints breach it, and
the value reported is the `datapointsToBreach`-th worst datapoint. A metric with no datapoint at all counts
as its missingData policy says (no-data, breaching, not-breaching, ignore). With some datapoints, empty
periods are not counted: CloudWatch publishes late, so the newest periods are often empty.

Per resource: NOT_FOUND when it does not exist (nothing is read for it); UNHEALTHY when a metric breaches
critical; else DEGRADED when one breaches warning; else NO_DATA when a metric with thresholds is NO_DATA or
no metric has any datapoint (missing data is never called healthy); else HEALTHY. Metrics without
thresholds are reported only: they never decide.

Overall: UNHEALTHY when a resource is UNHEALTHY or NOT_FOUND; else DEGRADED; else NO_DATA when any is (or
there is no resource at all); else HEALTHY.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from devops_operator.api.healthcheck import GREATER_COMPARISONS, ComparisonOperator, MissingDataPolicy, Verdict
from devops_operator.ops.health.registry import DerivedRate

Point = tuple[datetime, float]

# Worst first: how resources are ordered in status and how the overall verdict is chosen.
SEVERITY = {Verdict.HEALTHY: 0, Verdict.NO_DATA: 1, Verdict.DEGRADED: 2, Verdict.UNHEALTHY: 3, Verdict.NOT_FOUND: 4}


def severity(verdict: Verdict | str) -> int:
    return SEVERITY[Verdict(verdict)]


def breaches(value: float, threshold: float, comparison: ComparisonOperator | str) -> bool:
    op = ComparisonOperator(comparison)
    if op is ComparisonOperator.GREATER_THAN:
        return value > threshold
    if op is ComparisonOperator.GREATER_THAN_OR_EQUAL:
        return value >= threshold
    if op is ComparisonOperator.LESS_THAN:
        return value < threshold
    return value <= threshold


def worst_first(values: Iterable[float], comparison: ComparisonOperator | str) -> list[float]:
    return sorted(values, reverse=ComparisonOperator(comparison) in GREATER_COMPARISONS)


SYMBOLS = {
    ComparisonOperator.GREATER_THAN: ">",
    ComparisonOperator.GREATER_THAN_OR_EQUAL: ">=",
    ComparisonOperator.LESS_THAN: "<",
    ComparisonOperator.LESS_THAN_OR_EQUAL: "<=",
}


UNIT_SYMBOLS = {
    "Percent": "%", "Seconds": "s", "Milliseconds": "ms", "Microseconds": "us", "Bytes": "B",
    "Kilobytes": "KB", "Megabytes": "MB", "Gigabytes": "GB", "Terabytes": "TB", "Count": "", "None": "",
}


def format_value(value: float, unit: str | None) -> str:
    text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.4e}"
    symbol = UNIT_SYMBOLS.get(unit or "None", unit or "")
    return f"{text} {symbol}" if symbol else text


class MetricRule(Protocol):
    """What the evaluator needs of a metric (a `ResolvedMetric` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def statistic(self) -> str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def warning(self) -> float | None: ...
    @property
    def critical(self) -> float | None: ...
    @property
    def comparison(self) -> ComparisonOperator: ...
    @property
    def datapoints_to_breach(self) -> int: ...
    @property
    def missing_data(self) -> MissingDataPolicy: ...


@dataclass(frozen=True)
class MetricVerdict:
    name: str
    verdict: Verdict
    reason: str
    value: float | None = None
    threshold: float | None = None
    comparison: ComparisonOperator | None = None
    unit: str | None = None
    statistic: str | None = None
    datapoints: int = 0
    level: str | None = None  # "critical" or "warning" when breached


def evaluate_metric(rule: MetricRule, values: Sequence[float]) -> MetricVerdict | None:
    """The verdict of one metric over the window's datapoints; None when missingData says ignore it."""
    comparison = ComparisonOperator(rule.comparison)
    judged = rule.warning is not None or rule.critical is not None
    shown = rule.warning if rule.warning is not None else rule.critical

    def verdict_of(verdict: Verdict, reason: str, *, value: float | None = None, threshold: float | None = shown,
                   level: str | None = None) -> MetricVerdict:
        return MetricVerdict(rule.name, verdict, reason, value=value, threshold=threshold,
                             comparison=comparison if judged else None, unit=rule.unit, statistic=rule.statistic,
                             datapoints=len(values), level=level)

    if not values:
        policy = MissingDataPolicy(rule.missing_data)
        if policy is MissingDataPolicy.IGNORE:
            return None
        if policy is MissingDataPolicy.BREACHING and judged:
            level = "critical" if rule.critical is not None else "warning"
            return verdict_of(Verdict.UNHEALTHY if level == "critical" else Verdict.DEGRADED,
                              f"{rule.name}: no datapoints (missingData breaching)",
                              threshold=rule.critical if level == "critical" else rule.warning, level=level)
        if policy is MissingDataPolicy.NOT_BREACHING:
            return verdict_of(Verdict.HEALTHY, f"{rule.name}: no datapoints (missingData not-breaching)")
        return verdict_of(Verdict.NO_DATA, f"{rule.name}: no datapoints in the window")

    needed = rule.datapoints_to_breach
    value = worst_first(values, comparison)[min(needed, len(values)) - 1]
    for level, threshold, verdict in (("critical", rule.critical, Verdict.UNHEALTHY),
                                      ("warning", rule.warning, Verdict.DEGRADED)):
        if threshold is None:
            continue
        breaching = sum(1 for v in values if breaches(v, threshold, comparison))
        if breaching >= needed:
            of = f" ({breaching} of {len(values)} datapoints)" if needed > 1 or len(values) > 1 else ""
            reason = (f"{rule.name} {format_value(value, rule.unit)} {SYMBOLS[comparison]} {level} "
                      f"{format_value(threshold, rule.unit)}{of}")
            return verdict_of(verdict, reason, value=value, threshold=threshold, level=level)
    if shown is None:
        reason = f"{rule.name} {format_value(value, rule.unit)} (reported only)"
    elif len(values) < needed:
        reason = f"{rule.name}: {len(values)} datapoint(s), {needed} needed to breach"
    else:
        reason = f"{rule.name} {format_value(value, rule.unit)} within {format_value(shown, rule.unit)}"
    return verdict_of(Verdict.HEALTHY, reason, value=value)


@dataclass(frozen=True)
class ResourceVerdict:
    verdict: Verdict
    reasons: tuple[str, ...]
    metrics: tuple[MetricVerdict, ...] = field(default_factory=tuple)
    decided_by: str | None = None  # the metric that decided, for one-line summaries


MAX_REASONS = 20


def resource_verdict(metrics: Sequence[MetricVerdict | None], *, exists: bool = True,
                     missing_reason: str = "does not exist in AWS") -> ResourceVerdict:
    """One resource's verdict from its metrics' verdicts (None: a metric left out by missingData ignore)."""
    if not exists:
        return ResourceVerdict(Verdict.NOT_FOUND, (missing_reason,), (), None)
    judged = [m for m in metrics if m is not None]
    for verdict in (Verdict.UNHEALTHY, Verdict.DEGRADED):
        deciding = [m for m in judged if m.verdict == verdict]
        if deciding:
            return ResourceVerdict(verdict, tuple(m.reason for m in deciding[:MAX_REASONS]), tuple(judged),
                                   deciding[0].name)
    if not any(m.datapoints for m in judged):
        why = "no metric to evaluate" if not judged else "no metric has any datapoint in the window"
        return ResourceVerdict(Verdict.NO_DATA, (why,), tuple(judged), None)
    no_data = [m for m in judged if m.verdict == Verdict.NO_DATA and m.threshold is not None]
    if no_data:
        return ResourceVerdict(Verdict.NO_DATA, tuple(m.reason for m in no_data[:MAX_REASONS]), tuple(judged),
                               no_data[0].name)
    reasons = tuple(m.reason for m in judged if m.threshold is not None)[:MAX_REASONS]
    return ResourceVerdict(Verdict.HEALTHY, reasons or ("every metric within its thresholds",), tuple(judged), None)


def overall_verdict(verdicts: Iterable[Verdict | str]) -> Verdict:
    found = {Verdict(v) for v in verdicts}
    if not found:
        return Verdict.NO_DATA
    if found & {Verdict.UNHEALTHY, Verdict.NOT_FOUND}:
        return Verdict.UNHEALTHY
    if Verdict.DEGRADED in found:
        return Verdict.DEGRADED
    if Verdict.NO_DATA in found:
        return Verdict.NO_DATA
    return Verdict.HEALTHY


# --- series arithmetic ------------------------------------------------------------------------------


def derive_rate(rate: DerivedRate, numerator: Sequence[Point], denominator: Sequence[Point]) -> list[Point]:
    """numerator / denominator * scale per timestamp; periods without a denominator (or with 0) have none."""
    top = dict(numerator)
    points = []
    for at, below in denominator:
        if below == 0:
            continue
        above = top.get(at)
        if above is None:
            if not rate.numerator.zero_when_missing:
                continue
            above = 0.0
        points.append((at, above / below * rate.scale))
    return points


def window_total(rate: DerivedRate, numerator: Sequence[Point], denominator: Sequence[Point]) -> float | None:
    """The rate over a whole window: sum of numerators over sum of denominators (not a mean of rates)."""
    below = sum(v for _, v in denominator)
    if below == 0:
        return None
    times = {at for at, _ in denominator}
    above = sum(v for at, v in numerator if at in times)
    return above / below * rate.scale
