"""Verification after acting: when to check, and what a verdict means for the remediation (pure).

The verdict itself comes from the HealthCheck evaluator (`health.py`); this module only decides:
HEALTHY passes (DEGRADED too with acceptDegraded); anything else waits for the next check until the
deadline (delay + timeout after the action), then fails. NO_DATA never passes: a target with no
datapoints since the action has not shown that it is healthy.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from devops_operator.api.healthcheck import Verdict

MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(seconds=30)


class Next(StrEnum):
    PASS = "pass"
    WAIT = "wait"
    FAIL = "fail"


def interval(delay: timedelta) -> timedelta:
    """Time between checks: the delay, kept between 1 and 30 seconds."""
    return max(MIN_INTERVAL, min(delay, MAX_INTERVAL))


def passes(verdict: Verdict | str, accept_degraded: bool) -> bool:
    return verdict == Verdict.HEALTHY or (accept_degraded and verdict == Verdict.DEGRADED)


def judge(verdict: Verdict | str, *, accept_degraded: bool, now: datetime, deadline: datetime) -> Next:
    if passes(verdict, accept_degraded):
        return Next.PASS
    return Next.FAIL if now >= deadline else Next.WAIT
