"""Service-level objectives over plain datapoints (pure): SLI, error budget, burn rates, alerts.

An SLO here is time-sliced: each datapoint of its metric (one period) is good or bad by the SLO's good
condition, and the SLI is the share of good datapoints among those with data over the SLO window.

- error budget: the share of bad datapoints the objective allows, `1 - objective/100`; what remains is
  `1 - (bad share / allowed share)`, in percent (negative once overspent);
- burn rate over a window: the bad share in that window over the allowed share (1: spending exactly the
  budget over the SLO window);
- alerts, multi-window and multi-burn-rate as in the Google SRE workbook (chapter 5): *page* when both the
  last hour and the last 5 minutes burn at 14.4x or more (2% of a 30-day budget in one hour, and still
  burning), *ticket* when both the last 6 hours and the last 30 minutes burn at 6x or more (5% in 6 hours).

Where the datapoints come from (the documented choice): CloudWatch itself, read at the metric's period
raised to the finest period CloudWatch keeps over the whole span (60 s for up to 15 days, 300 s up to 63
days) and at most `MAX_SLO_POINTS` datapoints per query. The span is the SLO window or the longest alerting
window (6 hours), whichever is longer. Nothing is accumulated by the operator, so a restart loses nothing
and every replica computes the same numbers; the price is one metric query per SLO input per check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devops_operator.api.healthcheck import SloAlert
from devops_operator.ops.health.evaluate import Point
from devops_operator.ops.health.windows import retention

MAX_SLO_POINTS = 10_080  # a week of minutes: 69 such queries fill one GetMetricData page (100,800 datapoints)


@dataclass(frozen=True)
class BurnAlert:
    alert: SloAlert
    long: timedelta
    short: timedelta
    factor: float


BURN_ALERTS = (
    BurnAlert(SloAlert.PAGE, timedelta(hours=1), timedelta(minutes=5), 14.4),
    BurnAlert(SloAlert.TICKET, timedelta(hours=6), timedelta(minutes=30), 6.0),
)
ALERT_WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("5m", timedelta(minutes=5)),
    ("30m", timedelta(minutes=30)),
    ("1h", timedelta(hours=1)),
    ("6h", timedelta(hours=6)),
)
LONGEST_ALERT_WINDOW = max(w for _, w in ALERT_WINDOWS)


def slo_span(window: timedelta) -> timedelta:
    """How far back an SLO reads: its window, or the longest alerting window if that is longer."""
    return max(window, LONGEST_ALERT_WINDOW)


def slo_period(window: timedelta, metric_period: int) -> int | None:
    """The period an SLO is read at (None: CloudWatch keeps no period over the span)."""
    span = slo_span(window)
    for period in (60, 300, 3600):
        if period >= metric_period and retention(period) >= span and span.total_seconds() / period <= MAX_SLO_POINTS:
            return period
    return None


@dataclass(frozen=True)
class SloResult:
    sli: float | None
    error_budget_remaining: float | None
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    alert: SloAlert | None = None
    good: int = 0
    total: int = 0
    message: str | None = None


def _shares(points: Sequence[Point], good: Callable[[float], bool], since: datetime) -> tuple[int, int]:
    inside = [value for at, value in points if at >= since]
    return sum(1 for value in inside if good(value)), len(inside)


def burn_rate(good_count: int, total: int, objective: float) -> float | None:
    if total == 0:
        return None
    allowed = 1 - objective / 100
    return ((total - good_count) / total) / allowed


def evaluate_slo(points: Sequence[Point], *, objective: float, window: timedelta, end: datetime,
                 good: Callable[[float], bool]) -> SloResult:
    """SLI, budget, burn rates and alert from an SLO metric's datapoints (timestamps are period starts)."""
    good_count, total = _shares(points, good, end - window)
    rates = {name: burn_rate(*_shares(points, good, end - length), objective) for name, length in ALERT_WINDOWS}
    if total == 0:
        return SloResult(None, None, rates, None, 0, 0, "no datapoints over the SLO window")
    allowed = 1 - objective / 100
    bad_share = (total - good_count) / total
    alert = None
    for rule in BURN_ALERTS:
        long_rate = rates[_name(rule.long)]
        short_rate = rates[_name(rule.short)]
        if long_rate is not None and short_rate is not None and long_rate >= rule.factor and short_rate >= rule.factor:
            alert = rule.alert
            break
    return SloResult(
        sli=good_count / total * 100,
        error_budget_remaining=(1 - bad_share / allowed) * 100,
        burn_rates=rates,
        alert=alert,
        good=good_count,
        total=total,
    )


def _name(length: timedelta) -> str:
    return next(name for name, window in ALERT_WINDOWS if window == length)
