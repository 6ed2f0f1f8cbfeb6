"""Time windows of a check and what CloudWatch keeps (pure).

CloudWatch keeps datapoints at a period for a limited time: periods under 60 s for 3 hours, 60 s for
15 days, 300 s for 63 days, 3600 s for 455 days. A window whose start is older than what the chosen period
keeps can only come back empty, so it is refused before any call, naming the field and the fix.

Windows end on a minute boundary: CloudWatch aligns datapoints to periods, and so does every check, so
that the same window gives the same datapoints against moto and AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devops_operator.api.healthcheck import EvaluationWindow, parse_rfc3339
from devops_operator.durations import format_duration, parse_duration

# (largest period, how long CloudWatch keeps datapoints at it), finest first.
RETENTION: tuple[tuple[int, timedelta], ...] = (
    (59, timedelta(hours=3)),
    (299, timedelta(days=15)),
    (3599, timedelta(days=63)),
    (86400, timedelta(days=455)),
)
RETENTION_TEXT = "periods under 60 s are kept 3 hours, 60 s 15 days, 300 s 63 days, 3600 s 455 days"


@dataclass(frozen=True)
class TimeWindow:
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def seconds(self) -> float:
        return self.length.total_seconds()

    def previous(self) -> TimeWindow:
        """The window of the same length just before this one (the performance comparison)."""
        return TimeWindow(self.start - self.length, self.start)

    def describe(self) -> str:
        return f"{rfc3339(self.start)} to {rfc3339(self.end)} ({format_duration(self.length)})"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_minute(moment: datetime) -> datetime:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def retention(period: int) -> timedelta:
    """How long CloudWatch keeps datapoints of this period."""
    for largest, kept in RETENTION:
        if period <= largest:
            return kept
    return RETENTION[-1][1]


def finest_period_keeping(age: timedelta, at_least: int = 60) -> int | None:
    """The finest standard period (60, 300, 3600, at least `at_least`) whose data is kept for `age`."""
    for period in (60, 300, 3600):
        if period >= at_least and retention(period) >= age:
            return period
    if at_least > 3600 and retention(at_least) >= age:
        return at_least
    return None


class WindowError(ValueError):
    """A window that cannot be read: the message names the field and the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def check_window(window: EvaluationWindow, now: datetime) -> TimeWindow:
    """The window a check reads: the last N minutes before now, or around an anchor (never past now)."""
    end_now = floor_minute(now)
    if window.anchor is None:
        minutes = window.last_minutes or 5
        return TimeWindow(end_now - timedelta(minutes=minutes), end_now)
    at = parse_rfc3339(window.anchor.at)
    start = floor_minute(at - parse_duration(window.anchor.before))
    end = min(floor_minute(at + parse_duration(window.anchor.after)), end_now)
    if start >= end_now:
        raise WindowError("spec.window.anchor.at", f"{window.anchor.at} minus before is not in the past yet: "
                          "anchor the window to a moment that has happened")
    if end <= start:
        raise WindowError("spec.window.anchor", "before and after leave an empty window: make one of them longer")
    return TimeWindow(start, end)


def retention_problem(window: TimeWindow, period: int, now: datetime) -> str | None:
    """Why CloudWatch cannot serve this window at this period (None when it can)."""
    kept = retention(period)
    oldest = floor_minute(now) - kept
    if window.start < oldest:
        return (f"the window starts {rfc3339(window.start)}, but CloudWatch keeps {period}-second datapoints only "
                f"{format_duration(kept)} ({RETENTION_TEXT}): use a longer period or a later window")
    if period > window.seconds:
        return (f"the period ({period} s) is longer than the window ({format_duration(window.length)}), so no "
                "datapoint can fall in it: use a shorter period or a longer window")
    return None
