"""SLO arithmetic over plain series: SLI, error budget, burn rates, multi-window alerts, the period chosen."""

from __future__ import annotations

import datetime as dt

import pytest

from devops_operator.api.healthcheck import SloAlert
from devops_operator.ops.health.slo import burn_rate, evaluate_slo, slo_period, slo_span

END = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


def series(minutes: int, bad_in_last: int, *, bad_also: range = range(0)) -> list[tuple[dt.datetime, float]]:
    """One datapoint a minute for `minutes` minutes before END: 0 (good) or 1 (bad)."""
    points = []
    for back in range(minutes, 0, -1):
        bad = back <= bad_in_last or back in bad_also
        points.append((END - dt.timedelta(minutes=back), 1.0 if bad else 0.0))
    return points


def good(value: float) -> bool:
    return value < 0.5


def test_sli_budget_and_burn_rates_over_one_day() -> None:
    day = dt.timedelta(days=1)
    # 1440 minutes, 72 bad (5 %), all in the last 72 minutes; objective 99 % allows 14.4 bad minutes.
    result = evaluate_slo(series(1440, 72), objective=99.0, window=day, end=END, good=good)
    assert (result.good, result.total) == (1368, 1440)
    assert result.sli == pytest.approx(95.0)
    assert result.error_budget_remaining == pytest.approx((1 - 0.05 / 0.01) * 100)  # -400 %: overspent 5x
    assert result.burn_rates["5m"] == pytest.approx(100.0)  # all bad / 1 % allowed
    assert result.burn_rates["30m"] == pytest.approx(100.0)
    assert result.burn_rates["1h"] == pytest.approx(100.0)
    assert result.burn_rates["6h"] == pytest.approx(72 / 360 / 0.01)
    assert result.alert is SloAlert.PAGE


def test_both_windows_must_burn_before_an_alert() -> None:
    day = dt.timedelta(days=1)
    # Bad from 90 to 31 minutes ago, recovered since: the 1h window burns fast, the 5m window does not.
    recovered = evaluate_slo(series(1440, 0, bad_also=range(31, 91)), objective=99.0, window=day, end=END, good=good)
    assert recovered.burn_rates["1h"] == pytest.approx(30 / 60 / 0.01)
    assert recovered.burn_rates["5m"] == 0.0
    # 6h burns at 60 / 360 / 1 % = 16.7x but 30m at 0: no ticket either.
    assert recovered.alert is None

    # A slow burn: 8 % bad spread over the last 6 hours (every 12th minute bad, and the last 3).
    spread = series(1440, 3, bad_also=range(12, 361, 12))
    slow = evaluate_slo(spread, objective=99.0, window=day, end=END, good=good)
    assert slow.burn_rates["1h"] is not None and slow.burn_rates["1h"] < 14.4
    assert (slow.burn_rates["6h"] or 0.0) >= 6.0 and (slow.burn_rates["30m"] or 0.0) >= 6.0
    assert slow.alert is SloAlert.TICKET


def test_a_healthy_slo_keeps_its_budget() -> None:
    result = evaluate_slo(series(1440, 0, bad_also=range(600, 605)), objective=99.9, window=dt.timedelta(days=1),
                          end=END, good=good)
    assert result.sli == pytest.approx(100 * 1435 / 1440)
    assert result.error_budget_remaining == pytest.approx((1 - (5 / 1440) / 0.001) * 100)
    assert result.burn_rates["5m"] == 0.0 and result.alert is None


def test_only_datapoints_inside_the_window_count_and_no_data_is_no_indicator() -> None:
    hour = dt.timedelta(hours=1)
    result = evaluate_slo(series(600, 0, bad_also=range(100, 200)), objective=99.0, window=hour, end=END, good=good)
    assert (result.good, result.total) == (60, 60) and result.sli == 100.0
    empty = evaluate_slo([], objective=99.0, window=hour, end=END, good=good)
    assert empty.sli is None and empty.error_budget_remaining is None and empty.message
    assert burn_rate(0, 0, 99.0) is None


@pytest.mark.parametrize(
    ("window", "metric_period", "period"),
    [
        (dt.timedelta(hours=1), 60, 60),  # read over 6 h: the longest alerting window
        (dt.timedelta(days=1), 60, 60),
        (dt.timedelta(days=7), 60, 60),  # 10,080 one-minute datapoints: the most one query takes
        (dt.timedelta(days=8), 60, 300),  # more than 10,080 minutes
        (dt.timedelta(days=30), 60, 300),  # 1-minute data lives 15 days
        (dt.timedelta(days=30), 1, 300),
        (dt.timedelta(days=2), 300, 300),  # never finer than the metric's own period
        (dt.timedelta(days=30), 3600, 3600),
    ],
)
def test_the_period_an_slo_is_read_at(window: dt.timedelta, metric_period: int, period: int) -> None:
    assert slo_period(window, metric_period) == period
    assert slo_span(window) == max(window, dt.timedelta(hours=6))
