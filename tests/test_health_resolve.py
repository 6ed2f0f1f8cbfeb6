"""Which metrics a target is judged by, and the problems found before any call (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import (
    ComparisonOperator,
    EvaluationWindow,
    MetricSpec,
    MissingDataPolicy,
    SloSpec,
    TargetResource,
    TypeMetrics,
)
from devops_operator.controllers.healthcheck import parse_spec
from devops_operator.ops.health.registry import KNOWN_METRICS, TYPES
from devops_operator.ops.health.resolve import SeriesKey, metric_problems, resolve_metrics
from devops_operator.ops.health.service import CheckSettings, settings_problems
from devops_operator.ops.health.targets import Target, from_spec
from devops_operator.ops.health.windows import check_window, retention, retention_problem

NOW = dt.datetime(2025, 3, 20, 12, 0, 30, tzinfo=dt.UTC)


def fn(name: str = "orders", **metrics: Any) -> Target:
    resource = TargetResource.model_validate({"type": "lambda", "id": name, **metrics})
    return from_spec(resource, 0)


def type_metrics(rtype: str, *specs: dict[str, Any], include_defaults: bool = True) -> TypeMetrics:
    return TypeMetrics.model_validate({"type": rtype, "includeDefaults": include_defaults, "metrics": list(specs)})


def test_every_type_has_defaults_whose_names_cloudwatch_publishes() -> None:
    assert set(TYPES) == set(ResourceType)
    for info in TYPES.values():
        assert info.defaults, info.type
        assert any(d.warning is not None or d.critical is not None for d in info.defaults), info.type
        for default in info.defaults:
            inputs = [default.derived.numerator, default.derived.denominator] if default.derived else []
            for name, namespace in [(default.name, default.namespace)] if not inputs else [
                    (i.metric_name, i.namespace) for i in inputs]:
                assert name in KNOWN_METRICS[namespace or default.namespace or info.namespace], (info.type, name)


def test_defaults_for_a_lambda() -> None:
    metrics = resolve_metrics(fn(), None, MissingDataPolicy.NO_DATA)
    assert [m.name for m in metrics] == ["ErrorRate", "Throttles", "Duration", "Invocations"]
    rate = metrics[0]
    assert rate.derived is not None and (rate.warning, rate.critical) == (1.0, 5.0)
    assert [k.metric_name for k in rate.series()] == ["Errors", "Invocations"]
    assert rate.series()[0] == SeriesKey("AWS/Lambda", "Errors", (("FunctionName", "orders"),), "Sum", 60, None)
    assert metrics[1].missing_data == MissingDataPolicy.NOT_BREACHING  # Lambda publishes Throttles only then
    assert metrics[2].percentiles and not metrics[0].percentiles


def test_overrides_merge_by_name_field_by_field_type_then_target() -> None:
    per_type = type_metrics(
        "lambda",
        {"name": "ErrorRate", "threshold": {"warning": 2, "critical": 10}, "datapointsToBreach": 3},
        {"name": "Throttles", "enabled": False},
        {"name": "ConcurrentExecutions", "statistic": "Maximum", "threshold": {"warning": 800}},
    )
    target = fn(metrics=[{"name": "ErrorRate", "period": 300}, {"name": "Duration", "statistic": "p99",
                                                                   "dimensions": {"Resource": "orders:live"}}])
    metrics = {m.name: m for m in resolve_metrics(target, per_type, MissingDataPolicy.BREACHING, "spec.metrics[0]")}
    assert list(metrics) == ["ErrorRate", "Duration", "Invocations", "ConcurrentExecutions"]
    rate = metrics["ErrorRate"]
    assert (rate.warning, rate.critical, rate.datapoints_to_breach, rate.period) == (2.0, 10.0, 3, 300)
    assert rate.field == "spec.targets.resources[0].metrics[0]"
    assert rate.missing_data == MissingDataPolicy.BREACHING  # the spec's default where nothing else says
    duration = metrics["Duration"]
    assert duration.statistic == "p99" and dict(duration.dimensions) == {"FunctionName": "orders",
                                                                          "Resource": "orders:live"}
    added = metrics["ConcurrentExecutions"]
    assert (added.namespace, added.statistic, added.period, added.comparison) == (
        "AWS/Lambda", "Maximum", 60, ComparisonOperator.GREATER_THAN)
    assert (added.warning, added.critical, added.field) == (800.0, None, "spec.metrics[0].metrics[2]")


def test_include_defaults_false_keeps_only_listed_metrics_and_a_target_may_re_enable_one() -> None:
    only = type_metrics("rds", {"name": "FreeStorageSpace"}, include_defaults=False)
    target = from_spec(TargetResource.model_validate({"type": "rds", "id": "db"}), 0)
    assert [m.name for m in resolve_metrics(target, only, MissingDataPolicy.NO_DATA)] == ["FreeStorageSpace"]
    off = type_metrics("lambda", {"name": "Throttles", "enabled": False})
    back = fn(metrics=[{"name": "Throttles", "enabled": True}])
    assert "Throttles" in [m.name for m in resolve_metrics(back, off, MissingDataPolicy.NO_DATA)]


def test_a_unit_is_sent_with_the_query_only_where_the_spec_sets_one() -> None:
    target = fn(metrics=[{"name": "Duration", "unit": "Milliseconds"}])
    metrics = {m.name: m for m in resolve_metrics(target, None, MissingDataPolicy.NO_DATA)}
    assert metrics["Duration"].series()[0].unit == "Milliseconds"
    assert metrics["Invocations"].unit == "Count" and metrics["Invocations"].series()[0].unit is None


def test_metric_names_cloudwatch_never_had_are_refused_with_the_closest_names() -> None:
    per_type = [type_metrics("lambda", {"name": "Errrors", "threshold": {"warning": 1}})]
    problems = metric_problems(per_type, [fn()])
    assert [p.field for p in problems] == ["spec.metrics[0].metrics[0].name"]
    assert "no metric 'Errrors' in AWS/Lambda" in problems[0].message and "did you mean Errors" in problems[0].message
    own = fn(metrics=[{"name": "CPUUtilisation", "namespace": "AWS/RDS"}])
    assert [p.field for p in metric_problems([], [own])] == ["spec.targets.resources[0].metrics[0].name"]
    custom = fn(metrics=[{"name": "CheckoutLatency", "namespace": "Shop/Checkout"}])
    assert metric_problems([], [custom]) == []  # a custom namespace: only CloudWatch knows


def test_a_rate_cannot_be_given_a_statistic_of_its_own() -> None:
    problems = metric_problems([type_metrics("lambda", {"name": "ErrorRate", "statistic": "Average"})], [fn()])
    assert [p.field for p in problems] == ["spec.metrics[0].metrics[0].statistic"]
    assert "computed from Errors / Invocations" in problems[0].message


def settings(**fields: Any) -> CheckSettings:
    return CheckSettings(**fields)


def test_windows_end_on_a_minute_and_anchors_never_reach_past_now() -> None:
    last = check_window(EvaluationWindow(last_minutes=5), NOW)
    assert (last.start.isoformat(), last.end.isoformat()) == ("2025-03-20T11:55:00+00:00", "2025-03-20T12:00:00+00:00")
    anchored = check_window(EvaluationWindow.model_validate(
        {"anchor": {"at": "2025-03-20T11:50:20Z", "before": "30m", "after": "1h"}}), NOW)
    assert (anchored.start.isoformat(), anchored.end.isoformat()) == ("2025-03-20T11:20:00+00:00",
                                                                     "2025-03-20T12:00:00+00:00")
    assert anchored.previous().start.isoformat() == "2025-03-20T10:40:00+00:00"


def test_retention_by_period() -> None:
    assert [retention(p).days for p in (60, 300, 3600)] == [15, 63, 455]
    assert retention(30) == dt.timedelta(hours=3)
    window = check_window(EvaluationWindow(last_minutes=5), NOW)
    assert retention_problem(window, 60, NOW) is None
    assert "longer than the window" in (retention_problem(window, 600, NOW) or "")


def test_windows_cloudwatch_no_longer_keeps_are_refused_naming_the_field() -> None:
    old = EvaluationWindow.model_validate({"anchor": {"at": "2025-03-01T12:00:00Z"}})  # 19 days ago
    problems = settings_problems([fn()], settings(window=old), NOW)
    assert {p.field for p in problems} == {"spec.window.anchor.at"}
    assert "keeps 60-second datapoints only 15d" in problems[0].message and "overridden" in problems[0].message
    coarse = [type_metrics("lambda", *({"name": n, "period": 300} for n in
                                       ("ErrorRate", "Throttles", "Duration", "Invocations")))]
    assert settings_problems([fn()], settings(window=old, metrics=tuple(coarse)), NOW) == []

    fine = fn(metrics=[{"name": "Duration", "period": 10}])
    long = settings(window=EvaluationWindow(last_minutes=240))
    problems = settings_problems([fine], long, NOW)
    assert [p.field for p in problems] == ["spec.targets.resources[0].metrics[0].period"]
    assert "keeps 10-second datapoints only 3h" in problems[0].message
    future = EvaluationWindow.model_validate({"anchor": {"at": "2025-03-21T12:00:00Z"}})
    assert [p.field for p in settings_problems([fn()], settings(window=future), NOW)] == ["spec.window.anchor.at"]


def slo(**fields: Any) -> SloSpec:
    base = {"name": "avail", "target": "orders", "metric": "ErrorRate", "objective": 99.5, "window": "30d",
            "goodCondition": {"comparison": "LessThanThreshold", "threshold": 1}}
    return SloSpec.model_validate(base | fields)


def test_slo_problems() -> None:
    assert settings_problems([fn()], settings(slos=(slo(),)), NOW) == []
    problems = settings_problems([fn()], settings(slos=(slo(metric="Latency"),)), NOW)
    assert [p.field for p in problems] == ["spec.slos[0].metric"] and "ErrorRate" in problems[0].message
    hourly = fn(metrics=[{"name": "ErrorRate", "period": 3600}])
    two_hours = EvaluationWindow(last_minutes=120)
    assert settings_problems([hourly], settings(window=two_hours, slos=(slo(window="7d"),)), NOW) == []
    problems = settings_problems([hourly], settings(slos=(slo(window="7d"),)), NOW)
    assert [p.field for p in problems] == ["spec.targets.resources[0].metrics[0].period"]
    assert "longer than the window (5m)" in problems[0].message and "shorter period" in problems[0].message
    with pytest.raises(ValidationError, match="at most 30d"):
        slo(window="31d")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"targets": {"resources": [{"type": "ec2", "id": "i-1"}]}}, "spec.targets.resources[0].type"),
        ({"targets": {"resources": [{"type": "lambda", "id": "arn:aws:sqs:us-east-1:123456789012:q"}]}},
         "spec.targets.resources[0].id"),
        ({"metrics": [{"type": "lambda", "metrics": [{"name": "Erors"}]}]}, "spec.metrics[0].metrics[0].name"),
        ({"window": {"anchor": {"at": "2020-01-01T00:00:00Z"}}}, "spec.window.anchor.at"),
        ({"slos": [{"name": "a", "target": "api", "metric": "ErrorRate", "objective": 99, "window": "60d",
                    "goodCondition": {"comparison": "LessThanThreshold", "threshold": 1}}]}, "spec.slos[0]"),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    base = {"projectRef": {"name": "shop"}, "environment": "test",
            "targets": {"resources": [{"type": "lambda", "id": "api"}]}}
    parsed, problems = parse_spec(base | spec)
    assert parsed is None and problems
    assert any(problem.startswith(field) for problem in problems), problems


def test_metric_spec_period_rules_still_hold() -> None:
    with pytest.raises(ValidationError, match="multiple of 60"):
        MetricSpec.model_validate({"name": "Errors", "period": 90})
