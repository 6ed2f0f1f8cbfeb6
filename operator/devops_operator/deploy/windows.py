"""Change windows: whether an apply (or a plan) may run now, and when it next may (pure).

An environment's `changeWindows` follow Argo CD's sync windows: each window opens on a cron schedule in
its time zone and stays open for its duration. A deny window that is open blocks; when any allow
window is defined, changes run only while one of them is open; with no windows, any time. The next
opening is found by stepping from boundary to boundary (allow starts, deny ends), so a deny window
that overlaps an allow window pushes the opening to where the deny window ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from devops_operator.api.devopsproject import ChangeWindow, WindowKind
from devops_operator.durations import parse_duration
from devops_operator.problems import Problem

HORIZON = timedelta(days=400)  # a yearly window must still be found
MAX_STEPS = 10_000


@dataclass(frozen=True)
class WindowState:
    open: bool
    reason: str  # why: "no change windows", "allow window ... open", "deny window ... open", ...
    next_open: datetime | None = None  # when closed: the next moment it opens (None: not within a year)
    closes_at: datetime | None = None  # when open because of an allow window: when that one closes


def window_problems(windows: Sequence[ChangeWindow], where: str) -> list[Problem]:
    """Schedules, durations and time zones that cannot work, naming the field (for the project's status)."""
    problems = []
    for index, window in enumerate(windows):
        field = f"{where}[{index}]"
        if not croniter.is_valid(window.schedule):
            problems.append(Problem(f"{field}.schedule", f"{window.schedule!r} is not a valid cron schedule "
                                    "(minute hour day-of-month month day-of-week, e.g. '0 22 * * 1-5')"))
        try:
            ZoneInfo(window.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(Problem(f"{field}.timeZone", f"{window.time_zone!r} is not an IANA time zone "
                                    "(e.g. UTC, Europe/Berlin, America/New_York)"))
        try:
            if parse_duration(window.duration) <= timedelta(0):
                problems.append(Problem(f"{field}.duration", "a window must stay open for more than 0s"))
        except ValueError as exc:
            problems.append(Problem(f"{field}.duration", str(exc)))
    return problems


@dataclass(frozen=True)
class _Window:
    kind: WindowKind
    schedule: str
    zone: ZoneInfo
    length: timedelta
    label: str

    def last_start(self, moment: datetime) -> datetime:
        """The latest scheduled opening at or before `moment`."""
        local = moment.astimezone(self.zone) + timedelta(seconds=1)  # get_prev is strictly before
        return croniter(self.schedule, local).get_prev(datetime).astimezone(UTC)

    def next_start(self, moment: datetime) -> datetime:
        """The first scheduled opening strictly after `moment`."""
        return croniter(self.schedule, moment.astimezone(self.zone)).get_next(datetime).astimezone(UTC)

    def open_until(self, moment: datetime) -> datetime | None:
        """When the window closes, if it is open at `moment`."""
        end = self.last_start(moment) + self.length
        return end if end > moment else None


def _compile(windows: Sequence[ChangeWindow], operation: str) -> list[_Window]:
    compiled = []
    for index, window in enumerate(windows):
        if operation not in [str(op) for op in window.applies_to]:
            continue
        label = window.description or f"{window.kind} window {index} ({window.schedule} {window.time_zone})"
        compiled.append(_Window(WindowKind(window.kind), window.schedule, ZoneInfo(window.time_zone),
                                parse_duration(window.duration), label))
    return compiled


def _state_at(windows: list[_Window], moment: datetime) -> tuple[bool, str, datetime | None]:
    for window in windows:
        if window.kind == WindowKind.DENY and (until := window.open_until(moment)) is not None:
            return False, f"{window.label} is open until {until.isoformat()}", None
    allows = [w for w in windows if w.kind == WindowKind.ALLOW]
    if not allows:
        return True, "no allow window restricts it", None
    for window in allows:
        if (until := window.open_until(moment)) is not None:
            return True, f"{window.label} is open", until
    return False, "no allow window is open", None


def evaluate(windows: Sequence[ChangeWindow], operation: str, now: datetime) -> WindowState:
    """Whether `operation` ("apply" or "plan") may run at `now`, and if not, when it next may."""
    now = now.astimezone(UTC)
    compiled = _compile(windows, operation)
    if not compiled:
        return WindowState(True, "no change windows")
    is_open, reason, closes = _state_at(compiled, now)
    if is_open:
        return WindowState(True, reason, closes_at=closes)
    moment = now
    for _ in range(MAX_STEPS):
        candidates = [w.next_start(moment) for w in compiled if w.kind == WindowKind.ALLOW]
        candidates += [until for w in compiled if w.kind == WindowKind.DENY and (until := w.open_until(moment))]
        if not candidates:
            break
        moment = min(candidates)
        if moment - now > HORIZON:
            break
        if _state_at(compiled, moment)[0]:
            return WindowState(False, reason, next_open=moment)
    return WindowState(False, reason, next_open=None)
