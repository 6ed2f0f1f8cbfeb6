"""Honest retries: exponential backoff from kopf's retry count, jittered and capped."""

from __future__ import annotations

from devops_operator.controllers.status import retry_delay


def upper(low: float, high: float) -> float:
    return high


def lower(low: float, high: float) -> float:
    return low


def test_delays_double_from_the_base_up_to_the_cap() -> None:
    steps = [retry_delay(n, base=2.0, cap=300.0, jitter=upper) for n in range(10)]
    assert steps == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]


def test_jitter_keeps_each_delay_within_the_upper_half_of_its_step() -> None:
    assert retry_delay(3, base=2.0, cap=300.0, jitter=lower) == 8.0
    for retry in range(12):
        delay = retry_delay(retry, base=1.0, cap=60.0)
        step = min(60.0, 2.0 ** retry)
        assert step / 2 <= delay <= step


def test_absurd_retry_counts_stay_at_the_cap() -> None:
    assert retry_delay(10_000, base=1.0, cap=120.0, jitter=upper) == 120.0
    assert retry_delay(-1, base=1.0, cap=120.0, jitter=upper) == 1.0
