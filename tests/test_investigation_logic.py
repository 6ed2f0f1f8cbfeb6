"""The Investigation's pure parts: filter patterns, timeframes, anomalies, the diagnosis, timeline, report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from devops_operator.api.common import ResourceType
from devops_operator.api.investigation import Confidence, Timeframe
from devops_operator.ops.investigation import filterpattern, sources
from devops_operator.ops.investigation.anomalies import Direction, MetricSeries, find_anomalies
from devops_operator.ops.investigation.causes import Change, Service, diagnose
from devops_operator.ops.investigation.patterns import LogEvent, Pattern, cluster
from devops_operator.ops.investigation.report import Findings, build_report, render_markdown
from devops_operator.ops.investigation.timeframe import TimeframeError, Window, resolve, retention_problem
from devops_operator.ops.investigation.timeline import EntryKind, build

NOW = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- filter patterns --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "message", "matches"), [
    ("ERROR", "ERROR boom", True),
    ("ERROR", "error boom", False),  # case-sensitive, as CloudWatch
    ("ERROR Timeout", "ERROR: Timeout talking to db", True),
    ("ERROR Timeout", "ERROR: refused", False),
    ('"connection timeout"', "Database connection timeout after 3000 ms", True),
    ('"connection timeout"', "connection refused, timeout", False),
    ("?ERROR ?FATAL", "FATAL: too many clients", True),
    ("?ERROR ?FATAL", "WARN slow", False),
    ("ERROR -healthcheck", "ERROR healthcheck failed", False),
    ("ERROR -healthcheck", "ERROR order failed", True),
    ("", "anything", True),
])
def test_filter_patterns_are_applied_as_cloudwatch_does(pattern: str, message: str, matches: bool) -> None:
    assert filterpattern.parse(pattern).matches(message) is matches


def test_json_and_space_delimited_patterns_are_left_to_aws() -> None:
    for text in ('{ $.level = "error" }', "[ip, user, status=5*]"):
        parsed = filterpattern.parse(text)
        assert parsed.exact is False and parsed.matches("whatever") and parsed.insights_filter() is None


def test_the_default_pattern_and_its_insights_clause() -> None:
    default = filterpattern.default_pattern()
    assert default.text.startswith("?ERROR ?Error ?error") and '?"timed out"' in default.text
    assert default.matches("Task timed out after 3 s") and not default.matches("INFO request handled in 40 ms")
    clause = filterpattern.parse('ERROR ?db ?"pool x" -debug').insights_filter()
    assert clause == "@message like /ERROR/ and @message like /db|pool\\ x/ and @message not like /debug/"


def test_an_unbalanced_quote_is_refused() -> None:
    with pytest.raises(filterpattern.FilterPatternError, match="close every quote"):
        filterpattern.parse('"unterminated')


# --- timeframes ---------------------------------------------------------------------------------------------


def test_timeframes_resolve_against_now() -> None:
    assert resolve(Timeframe(last_minutes=30), NOW) == Window(NOW - timedelta(minutes=30), NOW)
    fixed = resolve(Timeframe(start="2025-03-01T13:00:00Z", end="2025-03-01T13:30:00Z"), NOW)
    assert (fixed.start.hour, fixed.end.minute, fixed.capped) == (13, 30, False)
    anchored = resolve(Timeframe.model_validate({"anchor": {"at": "2025-03-01T13:55:00Z", "after": "15m"}}), NOW)
    assert anchored.start == NOW - timedelta(minutes=20) and anchored.end == NOW and anchored.capped


@pytest.mark.parametrize(("timeframe", "field"), [
    ({"start": "2025-03-01T15:00:00Z"}, "spec.timeframe.start"),
    ({"anchor": {"at": "2025-03-02T00:00:00Z"}}, "spec.timeframe.anchor.at"),
])
def test_a_timeframe_in_the_future_is_refused(timeframe: dict[str, object], field: str) -> None:
    with pytest.raises(TimeframeError) as info:
        resolve(Timeframe.model_validate(timeframe), NOW)
    assert info.value.field == field and "is in the future" in str(info.value)


def test_retention() -> None:
    window = Window(NOW - timedelta(days=3), NOW)
    assert retention_problem(window, NOW, "/g", None) is None
    assert retention_problem(window, NOW, "/g", 7) is None
    problem = retention_problem(window, NOW, "/g", 1)
    assert problem is not None and "keeps events for 1 days (retentionInDays)" in problem


# --- anomalies -----------------------------------------------------------------------------------------------


def series(values: list[float], direction: Direction = Direction.UP, metric: str = "Errors") -> MetricSeries:
    points = [(NOW - timedelta(minutes=len(values) - i), v) for i, v in enumerate(values)]
    return MetricSeries(metric, "fn", "Sum", direction, points)


def test_a_spike_after_a_quiet_baseline_is_one_anomaly() -> None:
    [found] = find_anomalies(series([0.0] * 20 + [12.0] * 10))
    assert (found.points, found.peak, found.baseline) == (10, 12.0, 0.0)
    assert found.describe() == "Errors of fn rose to 12 (baseline 0) over 10 datapoint(s)"


def test_spikes_longer_than_half_the_window_are_still_found() -> None:
    assert len(find_anomalies(series([0.0] * 10 + [12.0] * 20))) == 1


def test_a_steady_busy_series_and_a_short_one_have_none() -> None:
    assert find_anomalies(series([40.0, 42.0, 39.0, 41.0, 43.0, 40.0, 38.0, 42.0])) == []
    assert find_anomalies(series([0.0, 50.0])) == []


def test_a_drop_where_lower_is_worse() -> None:
    [found] = find_anomalies(series([800.0] * 12 + [90.0] * 3, Direction.DOWN, "FreeableMemory"))
    assert found.peak == 90.0 and found.describe().startswith("FreeableMemory of fn fell to 90")


# --- diagnosis -----------------------------------------------------------------------------------------------


def pattern(text: str, count: int, first: datetime, last: datetime | None = None) -> Pattern:
    from devops_operator.ops.investigation.masking import mask
    return Pattern(mask(text), count, ms(first), ms(last or first), text, "g")


def test_a_corroborated_majority_is_high_confidence() -> None:
    errors = [pattern("ERROR Database connection timeout after 3000 ms", 10, NOW - timedelta(minutes=10), NOW)]
    [spike] = find_anomalies(series([0.0] * 20 + [12.0] * 10))
    found = diagnose(errors, [spike], [], Service(ResourceType.LAMBDA, "fn"))
    assert found is not None
    assert found.cause_id == "database-timeout" and found.confidence == Confidence.HIGH and found.share == 1.0
    assert any("Remediation: action restart on lambda fn" in r for r in found.recommendations)
    assert found.evidence[0].startswith("10 of 10 matching events (100%) look like this cause")


def test_without_a_metric_anomaly_it_is_medium_and_a_minority_low() -> None:
    timeouts = pattern("ERROR Database connection timeout after 3000 ms", 6, NOW)
    found = diagnose([timeouts], [], [])
    assert found is not None and found.confidence == Confidence.MEDIUM
    assert any("the metrics do not confirm them" in e for e in found.evidence)
    mixed = [pattern("panic: nil map", 8, NOW), pattern("Task timed out after 3.00 seconds", 2, NOW),
             pattern("weird thing happened", 30, NOW)]
    found = diagnose(mixed, [], [])
    assert found is not None and found.cause_id == "unhandled-exception" and found.confidence == Confidence.LOW
    assert found.candidates == [("unhandled-exception", 8), ("function-timeout", 2)]


def test_a_deployment_just_before_the_first_error_is_evidence() -> None:
    errors = [pattern("Traceback (most recent call last):", 4, NOW - timedelta(minutes=5))]
    deploy = Change(NOW - timedelta(minutes=12), "deployment", "shop-api", "plan 1a2b3c")
    found = diagnose(errors, [], [deploy])
    assert found is not None
    assert "deployment shop-api happened 7 min before the first error (plan 1a2b3c)" in found.evidence
    assert any("began after deployment shop-api" in r for r in found.recommendations)
    unknown = diagnose([pattern("something odd", 3, NOW - timedelta(minutes=5))], [], [deploy])
    assert unknown is not None and unknown.cause_id == "recent-change" and unknown.confidence == Confidence.LOW


def test_no_matches_no_diagnosis() -> None:
    assert diagnose([], [], []) is None


# --- timeline and report ------------------------------------------------------------------------------------


def test_the_timeline_merges_and_orders_everything() -> None:
    errors = [pattern("ERROR x", 3, NOW - timedelta(minutes=5), NOW - timedelta(minutes=1))]
    [spike] = find_anomalies(series([0.0] * 20 + [12.0] * 10))
    changes = [Change(NOW - timedelta(minutes=15), "deployment", "api"),
               Change(NOW - timedelta(minutes=2), "remediation", "ns/restart", "restart lambda/fn: Succeeded")]
    timeline = build(errors, [spike], changes)
    assert [e.kind for e in timeline.entries] == [EntryKind.DEPLOYMENT, EntryKind.METRIC_ANOMALY,
                                                  EntryKind.LOG_PATTERN, EntryKind.REMEDIATION]
    assert timeline.count(EntryKind.REMEDIATION) == 1 and not timeline.truncated


def findings(count: int, mode: str = "query") -> Findings:
    events = [LogEvent(ms(NOW) + n, f"ERROR request {n} failed password=hunter{n}" + " x" * 200, "/g", "s")
              for n in range(count)]
    found = Findings(name="inv", namespace="ns", environment="test", mode=mode, source="FilterLogEvents",
                     log_groups=["/g"], window=Window(NOW - timedelta(hours=1), NOW), filter_pattern="ERROR",
                     match_count=count, truncated=False)
    if mode == "query":
        found.matches = events
    else:
        found.clustering = cluster(events)
    return found


def test_the_report_fits_its_budget_and_says_what_it_left_out() -> None:
    report = build_report(findings(2000), budget=50_000)
    assert len(json.dumps(report, separators=(",", ":")).encode()) <= 50_000
    assert report["matchesOmitted"] == 2000 - len(report["matches"]) > 0
    assert "hunter" not in json.dumps(report)  # log lines are redacted before they are kept


def test_the_markdown_report() -> None:
    markdown = render_markdown(build_report(findings(60, mode="investigate")))
    assert markdown.startswith("# Investigation ns/inv\n")
    assert "## Error patterns" in markdown and "| count | first seen | last seen | signature |" in markdown


def test_metric_periods_keep_series_under_1440_points() -> None:
    ref = sources.ServiceRef(ResourceType.LAMBDA, "fn")
    assert {q.period for q, _ in ref.metric_queries(3600)} == {60}
    assert {q.period for q, _ in ref.metric_queries(30 * 86400)} == {1800}
    assert sources.ServiceRef(ResourceType.ECS_SERVICE, "svc").metric_queries(3600) == []  # no cluster
    assert sources.from_log_group("/aws/lambda/fn") == ref
    assert sources.from_arn("arn:aws:ecs:us-east-1:123456789012:service/c1/web") == sources.ServiceRef(
        ResourceType.ECS_SERVICE, "web", "c1")
