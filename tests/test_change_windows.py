"""Change windows (pure): allow and deny windows with time zones, and when the next one opens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devops_operator.api.devopsproject import ChangeWindow
from devops_operator.deploy.windows import evaluate, window_problems


def window(**fields: Any) -> ChangeWindow:
    return ChangeWindow.model_validate(fields)


NIGHTLY = window(schedule="0 22 * * 1-5", duration="8h", timeZone="Europe/Berlin")  # Mon-Fri 22:00-06:00 CET
FREEZE = window(kind="deny", schedule="0 0 24 12 *", duration="72h", timeZone="UTC",
                description="christmas freeze")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_no_windows_means_any_time() -> None:
    state = evaluate([], "apply", at("2026-12-02T12:00:00+00:00"))
    assert state.open and state.reason == "no change windows"


def test_an_allow_window_opens_on_its_schedule_in_its_time_zone() -> None:
    wednesday_noon = evaluate([NIGHTLY], "apply", at("2026-12-02T12:00:00+01:00"))
    assert not wednesday_noon.open and wednesday_noon.reason == "no allow window is open"
    assert wednesday_noon.next_open == at("2026-12-02T22:00:00+01:00")

    late = evaluate([NIGHTLY], "apply", at("2026-12-02T23:30:00+01:00"))
    assert late.open and late.closes_at == at("2026-12-03T06:00:00+01:00")
    # Friday's window runs into Saturday morning; Saturday evening none opens until Monday.
    saturday = evaluate([NIGHTLY], "apply", at("2026-12-05T20:00:00+01:00"))
    assert not saturday.open and saturday.next_open == at("2026-12-07T22:00:00+01:00")
    assert evaluate([NIGHTLY], "apply", at("2026-12-05T05:59:00+01:00")).open


def test_a_deny_window_wins_and_pushes_the_next_opening_past_it() -> None:
    in_freeze = evaluate([NIGHTLY, FREEZE], "apply", at("2026-12-24T23:00:00+01:00"))
    assert not in_freeze.open and in_freeze.reason.startswith("christmas freeze is open until")
    # The freeze ends on Sunday 27 Dec 00:00 UTC; the nightly window runs on weekdays only, so the next
    # opening is Monday 28 Dec 22:00 Berlin.
    assert in_freeze.next_open == at("2026-12-28T22:00:00+01:00")
    only_deny = evaluate([FREEZE], "apply", at("2026-12-25T10:00:00+00:00"))
    assert not only_deny.open and only_deny.next_open == at("2026-12-27T00:00:00+00:00")


def test_windows_apply_to_applies_unless_plans_are_listed() -> None:
    assert evaluate([NIGHTLY], "plan", at("2026-12-02T12:00:00+01:00")).open
    both = window(schedule="0 22 * * *", duration="1h", appliesTo=["apply", "plan"])
    assert not evaluate([both], "plan", at("2026-12-02T12:00:00+00:00")).open


def test_daylight_saving_changes_are_followed() -> None:
    # 29 Mar 2026: Berlin skips 02:00-03:00; a 02:30 window opens at 03:00 local that night.
    dst = window(schedule="30 2 * * *", duration="1h", timeZone="Europe/Berlin")
    state = evaluate([dst], "apply", at("2026-03-29T00:00:00+01:00"))
    assert not state.open and state.next_open is not None
    assert state.next_open.astimezone(UTC) >= at("2026-03-29T01:00:00+00:00")


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"schedule": "61 2 * * *", "duration": "1h"}, "w[0].schedule", "not a valid cron schedule"),
    ({"schedule": "0 2 * * *", "duration": "1h", "timeZone": "Mars/Olympus"}, "w[0].timeZone", "IANA time zone"),
    ({"schedule": "0 2 * * *", "duration": "0s"}, "w[0].duration", "more than 0s"),
])
def test_malformed_windows_name_the_field(fields: dict[str, Any], field: str, says: str) -> None:
    (problem,) = window_problems([window(**fields)], "w")
    assert problem.field == field and says in problem.message
