"""The health evaluator over plain datapoints: metric, resource and overall verdicts; rates from raw series."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from devops_operator.api.healthcheck import ComparisonOperator, MissingDataPolicy, Verdict
from devops_operator.ops.health.evaluate import (
    MetricVerdict,
    derive_rate,
    evaluate_metric,
    overall_verdict,
    resource_verdict,
    window_total,
)
from devops_operator.ops.health.registry import LAMBDA

GT = ComparisonOperator.GREATER_THAN
LT = ComparisonOperator.LESS_THAN
T0 = dt.datetime(2025, 3, 1, 14, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Rule:
    name: str = "ErrorRate"
    statistic: str = "Sum"
    unit: str | None = "Percent"
    warning: float | None = 1.0
    critical: float | None = 5.0
    comparison: ComparisonOperator = GT
    datapoints_to_breach: int = 1
    missing_data: MissingDataPolicy = MissingDataPolicy.NO_DATA


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


@pytest.mark.parametrize(
    ("values", "verdict", "value", "threshold", "reason"),
    [
        ([0.0, 0.5, 0.2], Verdict.HEALTHY, 0.5, 1.0, "ErrorRate 0.5 % within 1 %"),
        ([0.0, 2.0, 0.2], Verdict.DEGRADED, 2.0, 1.0, "ErrorRate 2 % > warning 1 % (1 of 3 datapoints)"),
        ([0.0, 12.0, 3.0], Verdict.UNHEALTHY, 12.0, 5.0, "ErrorRate 12 % > critical 5 % (1 of 3 datapoints)"),
        ([1.0], Verdict.HEALTHY, 1.0, 1.0, "within"),  # GreaterThan: equal is not a breach
    ],
)
def test_each_verdict_of_a_metric(values: list[float], verdict: Verdict, value: float, threshold: float,
                                  reason: str) -> None:
    result = evaluate_metric(Rule(), values)
    assert result is not None
    assert (result.verdict, result.value, result.threshold, result.datapoints) == (verdict, value, threshold,
                                                                                 len(values))
    assert reason in result.reason


def test_datapoints_to_breach_judges_the_nth_worst_datapoint() -> None:
    rule = Rule(datapoints_to_breach=3)
    one_spike = evaluate_metric(rule, [0.1, 9.0, 0.2, 0.3])
    assert one_spike is not None and one_spike.verdict == Verdict.HEALTHY and one_spike.value == 0.2
    three_bad = evaluate_metric(rule, [6.0, 9.0, 7.0, 0.3])
    assert three_bad is not None and three_bad.verdict == Verdict.UNHEALTHY and three_bad.value == 6.0
    assert "(3 of 4 datapoints)" in three_bad.reason
    mixed = evaluate_metric(rule, [6.0, 2.0, 3.0, 0.3])  # one critical, three at warning or worse
    assert mixed is not None and mixed.verdict == Verdict.DEGRADED and mixed.value == 2.0
    too_few = evaluate_metric(rule, [9.0, 9.0])
    assert too_few is not None and too_few.verdict == Verdict.HEALTHY and "3 needed to breach" in too_few.reason


def test_less_than_comparisons_judge_the_lowest_values() -> None:
    rule = Rule(name="FreeStorageSpace", unit="Bytes", warning=10e9, critical=2e9, comparison=LT, statistic="Minimum")
    low = evaluate_metric(rule, [50e9, 1e9, 40e9])
    assert low is not None and low.verdict == Verdict.UNHEALTHY and low.value == 1e9
    assert "< critical" in low.reason
    fine = evaluate_metric(rule, [50e9, 40e9])
    assert fine is not None and fine.verdict == Verdict.HEALTHY and fine.value == 40e9


@pytest.mark.parametrize(
    ("policy", "verdict"),
    [
        (MissingDataPolicy.NO_DATA, Verdict.NO_DATA),
        (MissingDataPolicy.BREACHING, Verdict.UNHEALTHY),
        (MissingDataPolicy.NOT_BREACHING, Verdict.HEALTHY),
    ],
)
def test_missing_data_policies(policy: MissingDataPolicy, verdict: Verdict) -> None:
    result = evaluate_metric(Rule(missing_data=policy), [])
    assert result is not None and result.verdict == verdict and result.value is None and result.datapoints == 0
    assert "no datapoints" in result.reason


def test_missing_data_ignore_leaves_the_metric_out_and_breaching_without_critical_degrades() -> None:
    assert evaluate_metric(Rule(missing_data=MissingDataPolicy.IGNORE), []) is None
    warning_only = evaluate_metric(Rule(critical=None, missing_data=MissingDataPolicy.BREACHING), [])
    assert warning_only is not None and warning_only.verdict == Verdict.DEGRADED


def test_a_metric_without_thresholds_is_reported_only() -> None:
    result = evaluate_metric(Rule(name="Invocations", unit="Count", warning=None, critical=None), [100.0, 250.0])
    assert result is not None and result.verdict == Verdict.HEALTHY and result.threshold is None
    assert result.comparison is None and "reported only" in result.reason


def verdict_of(name: str, verdict: Verdict, datapoints: int, threshold: float | None = 1.0) -> MetricVerdict:
    rule = Rule(name=name, warning=threshold, critical=None if threshold is None else threshold * 5)
    values = {Verdict.HEALTHY: [0.0], Verdict.DEGRADED: [2.0], Verdict.UNHEALTHY: [50.0], Verdict.NO_DATA: []}[verdict]
    result = evaluate_metric(rule, values * datapoints if values else [])
    assert result is not None
    return result


def test_resource_verdict_takes_the_worst_metric_and_never_calls_missing_data_healthy() -> None:
    healthy = verdict_of("A", Verdict.HEALTHY, 3)
    degraded = verdict_of("B", Verdict.DEGRADED, 3)
    unhealthy = verdict_of("C", Verdict.UNHEALTHY, 3)
    no_data = verdict_of("D", Verdict.NO_DATA, 0)
    reported_only_empty = verdict_of("E", Verdict.NO_DATA, 0, threshold=None)

    worst = resource_verdict([healthy, degraded, unhealthy, no_data])
    assert worst.verdict == Verdict.UNHEALTHY and worst.decided_by == "C" and worst.reasons[0].startswith("C ")
    assert resource_verdict([healthy, degraded, no_data]).verdict == Verdict.DEGRADED
    assert resource_verdict([healthy, no_data]).verdict == Verdict.NO_DATA
    # A metric without thresholds decides nothing, data or not.
    assert resource_verdict([healthy, reported_only_empty]).verdict == Verdict.HEALTHY
    nothing = resource_verdict([no_data, reported_only_empty])
    assert nothing.verdict == Verdict.NO_DATA and nothing.reasons == ("no metric has any datapoint in the window",)
    # not-breaching turns an empty metric HEALTHY, but a resource with no datapoint at all stays NO_DATA.
    quiet = evaluate_metric(Rule(missing_data=MissingDataPolicy.NOT_BREACHING), [])
    assert resource_verdict([quiet]).verdict == Verdict.NO_DATA
    assert resource_verdict([None]).verdict == Verdict.NO_DATA  # every metric ignored
    assert resource_verdict([]).reasons == ("no metric to evaluate",)


def test_a_missing_resource_is_not_found_not_no_data() -> None:
    missing = resource_verdict([], exists=False, missing_reason="does not exist in AWS (spec.targets.resources[1])")
    assert missing.verdict == Verdict.NOT_FOUND and "spec.targets.resources[1]" in missing.reasons[0]


@pytest.mark.parametrize(
    ("verdicts", "overall"),
    [
        ([Verdict.HEALTHY, Verdict.HEALTHY], Verdict.HEALTHY),
        ([Verdict.HEALTHY, Verdict.NO_DATA], Verdict.NO_DATA),
        ([Verdict.NO_DATA, Verdict.DEGRADED], Verdict.DEGRADED),
        ([Verdict.DEGRADED, Verdict.UNHEALTHY], Verdict.UNHEALTHY),
        ([Verdict.HEALTHY, Verdict.NOT_FOUND], Verdict.UNHEALTHY),
        ([], Verdict.NO_DATA),
    ],
)
def test_overall_verdict(verdicts: list[Verdict], overall: Verdict) -> None:
    assert overall_verdict(verdicts) == overall


def test_rates_are_computed_from_raw_series_per_period() -> None:
    rate = LAMBDA.default("ErrorRate")
    assert rate is not None and rate.derived is not None
    invocations = [(at(0), 100.0), (at(1), 200.0), (at(2), 0.0), (at(3), 50.0)]
    errors = [(at(0), 5.0), (at(1), 2.0)]  # CloudWatch omits minutes without errors: they count as 0
    assert derive_rate(rate.derived, errors, invocations) == [(at(0), 5.0), (at(1), 1.0), (at(3), 0.0)]
    # Over a window: total errors over total invocations, not the mean of the per-minute rates.
    assert window_total(rate.derived, errors, invocations) == pytest.approx(7 / 350 * 100)
    assert window_total(rate.derived, errors, [(at(0), 0.0)]) is None
