"""Performance analysis (pure): each metric's window against the previous window of the same length.

A window's value follows the metric's statistic: Sum and SampleCount add up, Maximum and Minimum take the
extreme, Average takes the mean of the periods; a percentile's window value is the mean of its per-period
values (CloudWatch serves percentiles per period only). A rate is total numerator over total denominator.
The change is in percent of the previous value; below `FLAT_PERCENT` it is "flat". It is "worse" when it
moves toward the metric's thresholds (up for GreaterThan comparisons, down for LessThan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from devops_operator.api.healthcheck import GREATER_COMPARISONS, ComparisonOperator

FLAT_PERCENT = 5.0


def aggregate(values: Sequence[float], statistic: str) -> float | None:
    if not values:
        return None
    if statistic in ("Sum", "SampleCount"):
        return float(sum(values))
    if statistic == "Maximum":
        return max(values)
    if statistic == "Minimum":
        return min(values)
    return sum(values) / len(values)


@dataclass(frozen=True)
class PercentileTrend:
    statistic: str
    current: float | None
    previous: float | None


@dataclass(frozen=True)
class Trend:
    metric: str
    current: float | None
    previous: float | None
    change_percent: float | None
    direction: str  # up, down, flat, new (nothing before), gone (nothing now), no-data
    assessment: str | None  # better, worse, same; None without both values or thresholds
    unit: str | None = None
    statistic: str | None = None
    percentiles: tuple[PercentileTrend, ...] = field(default_factory=tuple)


def compare(metric: str, current: float | None, previous: float | None, *, comparison: ComparisonOperator | str,
            judged: bool, unit: str | None = None, statistic: str | None = None,
            percentiles: Sequence[PercentileTrend] = ()) -> Trend:
    """The trend of one metric from its window value and the previous window's."""
    if current is None and previous is None:
        return Trend(metric, None, None, None, "no-data", None, unit, statistic, tuple(percentiles))
    if previous is None:
        return Trend(metric, current, None, None, "new", None, unit, statistic, tuple(percentiles))
    if current is None:
        return Trend(metric, None, previous, None, "gone", None, unit, statistic, tuple(percentiles))
    change = ((current - previous) / abs(previous) * 100 if previous != 0
              else (0.0 if current == 0 else None))  # from zero: a change no percentage describes
    flat = change is not None and abs(change) < FLAT_PERCENT
    direction = "flat" if flat else ("up" if current > previous else "down")
    assessment = None
    if judged:
        if direction == "flat":
            assessment = "same"
        else:
            rising_is_worse = ComparisonOperator(comparison) in GREATER_COMPARISONS
            assessment = "worse" if (direction == "up") == rising_is_worse else "better"
    rounded = None if change is None else round(change, 2)
    return Trend(metric, current, previous, rounded, direction, assessment, unit, statistic, tuple(percentiles))
