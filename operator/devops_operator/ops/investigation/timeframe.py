"""The time range an Investigation searches: resolved from the spec, checked against now and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from devops_operator.api.healthcheck import parse_rfc3339
from devops_operator.api.investigation import Timeframe
from devops_operator.durations import parse_duration
from devops_operator.kube.conditions import rfc3339


class TimeframeError(ValueError):
    """A timeframe that cannot be searched: the field and the fix are in the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    # The spec asked for a range ending after now: it was cut at now.
    capped: bool = False

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


def resolve(timeframe: Timeframe, now: datetime) -> Window:
    """Start and end of the search; a range wholly in the future is refused, one ending later is cut at now."""
    if timeframe.anchor is not None:
        at = parse_rfc3339(timeframe.anchor.at)
        if at > now:
            raise TimeframeError(
                "spec.timeframe.anchor.at",
                f"{timeframe.anchor.at} is in the future (now is {rfc3339(now)}): logs cannot be searched "
                "before they exist; anchor to a moment that has happened",
            )
        start = at - parse_duration(timeframe.anchor.before)
        end = at + parse_duration(timeframe.anchor.after)
    elif timeframe.start is not None:
        start = parse_rfc3339(timeframe.start)
        end = parse_rfc3339(timeframe.end) if timeframe.end else now
        if start >= now:
            raise TimeframeError(
                "spec.timeframe.start",
                f"{timeframe.start} is in the future (now is {rfc3339(now)}): there is nothing to search yet; "
                "set a start in the past",
            )
    else:
        minutes = timeframe.last_minutes or 60
        start, end = now - timedelta(minutes=minutes), now
    capped = end > now
    return Window(start=start, end=min(end, now), capped=capped)


def retention_problem(window: Window, now: datetime, log_group: str, retention_days: int | None) -> str | None:
    """Why the window starts before the log group keeps events (None when it does not, or never expires)."""
    if not retention_days:
        return None
    oldest = now - timedelta(days=retention_days)
    if window.start >= oldest:
        return None
    asked = (now - window.start).total_seconds() / 86400
    return (
        f"the timeframe starts {rfc3339(window.start)} ({asked:.1f} days ago), but log group {log_group} keeps "
        f"events for {retention_days} days (retentionInDays): nothing older than {rfc3339(oldest)} can be "
        "searched; shorten spec.timeframe or raise the log group's retention"
    )
