"""A check's result as report, Markdown, status, conditions and Events; percentiles; scheduling decisions.

The checks here run `check_with_clients` against an in-memory CloudWatch that serves percentiles (moto
answers a percentile statistic with a server error), so the percentile path is exercised for real.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import (
    EvaluationWindow,
    HealthCheckStatus,
    MetricResult,
    ResourceHealth,
    SloSpec,
    TargetsSummary,
    Verdict,
)
from devops_operator.controllers.healthcheck import (
    Schedule,
    check_conditions,
    first_due,
    is_due,
    summary,
    verdict_event,
)
from devops_operator.ops.health import report
from devops_operator.ops.health.service import CheckSettings, check_with_clients
from devops_operator.ops.health.targets import Target

NOW = dt.datetime(2025, 3, 20, 12, 0, 0, tzinfo=dt.UTC)


class FakeCloudWatch:
    """GetMetricData answered from a table of (metric, function, statistic) -> value per minute."""

    def __init__(self, values: dict[tuple[str, str, str], float]) -> None:
        self.values = values
        self.requests: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        results = []
        start, end = request["StartTime"], request["EndTime"]
        for query in request["MetricDataQueries"]:
            stat = query["MetricStat"]
            metric = stat["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            value = self.values.get((metric["MetricName"], dims.get("FunctionName", ""), stat["Stat"]))
            stamps = []
            moment = start
            while moment < end and value is not None:
                stamps.append(moment)
                moment += dt.timedelta(seconds=stat["Period"])
            results.append({"Id": query["Id"], "Timestamps": stamps, "Values": [value] * len(stamps),
                            "StatusCode": "Complete"})
        return {"MetricDataResults": results, "ResponseMetadata": {"RetryAttempts": 0}}


def lam(name: str) -> Target:
    return Target(ResourceType.LAMBDA, name, name, check_existence=False)


def run(values: dict[tuple[str, str, str], float], targets: list[Target], **settings: Any) -> Any:
    cloudwatch = FakeCloudWatch(values)
    result = check_with_clients(lambda service, region: cloudwatch, targets, CheckSettings(**settings), now=NOW)
    return result, cloudwatch


def healthy_values(name: str, errors: float = 0.0) -> dict[tuple[str, str, str], float]:
    return {("Invocations", name, "Sum"): 100.0, ("Errors", name, "Sum"): errors, ("Throttles", name, "Sum"): 0.0,
            ("Duration", name, "Average"): 120.0, ("Duration", name, "p50"): 100.0, ("Duration", name, "p99"): 900.0}


def test_percentiles_are_read_for_the_metrics_cloudwatch_serves_them_for() -> None:
    result, cloudwatch = run(healthy_values("api"), [lam("api")], percentiles=("p50", "p99"))
    (request,) = cloudwatch.requests
    stats = sorted((q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"])
                   for q in request["MetricDataQueries"])
    # Duration's percentiles, none for the rate (computed here) or the counters.
    assert stats == [("Duration", "Average"), ("Duration", "p50"), ("Duration", "p99"), ("Errors", "Sum"),
                     ("Invocations", "Sum"), ("Throttles", "Sum")]
    # One range: the window and the previous window of the same length.
    assert request["StartTime"] == NOW - dt.timedelta(minutes=10) and request["EndTime"] == NOW
    duration = next(t for t in result.resources[0].trends if t.metric == "Duration")
    assert [(p.statistic, p.current, p.previous) for p in duration.percentiles] == [("p50", 100.0, 100.0),
                                                                                 ("p99", 900.0, 900.0)]
    assert (duration.direction, duration.assessment) == ("flat", "same")
    assert result.fetch.metrics_requested == 6 and result.fetch.estimated_cost_usd == 0.00006


def check_result() -> Any:
    values = healthy_values("good") | healthy_values("bad", errors=12.0)
    slo = SloSpec.model_validate({"name": "bad-errors", "target": "bad", "metric": "ErrorRate", "objective": 99,
                                  "window": "1d", "goodCondition": {"comparison": "LessThanThreshold",
                                                                    "threshold": 1}})
    result, _ = run(values, [lam("good"), lam("bad")], slos=(slo,))
    return result


def test_report_markdown_and_status_from_one_check() -> None:
    result = check_result()
    assert [r.target.name for r in result.resources] == ["bad", "good"]  # worst first
    document = report.report_document(result, None, healthcheck="shop/api-health", at="2025-03-20T12:00:00Z",
                                      targets={"source": "resources"})
    assert document["verdict"] == "UNHEALTHY" and document["counts"]["UNHEALTHY"] == 1
    bad = document["resources"][0]
    assert (bad["since"], bad["consecutive"], bad["decidedBy"]) == ("2025-03-20T12:00:00Z", 1, "ErrorRate")
    assert bad["metrics"][0]["trend"]["direction"] == "flat"
    assert document["slos"][0]["alert"] == "page" and document["apiCalls"]["getMetricData"] == 2

    later = report.report_document(result, document, healthcheck="shop/api-health", at="2025-03-20T12:05:00Z")
    assert (later["resources"][0]["since"], later["resources"][0]["consecutive"]) == ("2025-03-20T12:00:00Z", 2)

    markdown = report.render_markdown(later)[report.REPORT_MARKDOWN]
    for part in ("# Health report: shop/api-health", "| bad | lambda | UNHEALTHY | ErrorRate 12 % > critical 5 %",
                 "## Performance", "| good | Duration | 120 ms | 120 ms | +0.0 % | flat, same |", "## SLOs",
                 "| bad-errors | bad | 99.0 % |"):
        assert part in markdown, part

    summary_ = TargetsSummary(source="resources", resolved=2)
    history = [{"at": "2025-03-20T12:00:00Z", "verdict": "UNHEALTHY", "unhealthy": 1, "degraded": 0}]
    fields = report.status_fields(later, history, 20, summary_, "api-health-health-report", None)
    status = HealthCheckStatus.model_validate(fields)  # what the CRD accepts
    assert status.verdict == "UNHEALTHY" and status.counts.unhealthy == 1 and status.counts.total == 2
    assert [h.at for h in status.history] == ["2025-03-20T12:05:00Z", "2025-03-20T12:00:00Z"]
    assert status.slos[0].alert == "page" and [b.window for b in status.slos[0].burn_rates] == ["5m", "30m", "1h",
                                                                                             "6h"]
    assert status.api_calls is not None and status.api_calls.metrics_requested == 10
    assert report.status_fields(later, history * 30, 3, summary_, "r", None)["history"].__len__() == 3
    assert report.status_fields(later, history, 0, summary_, "r", None)["history"] == []

    conditions = {c[0]: c for c in check_conditions(later)}
    assert conditions["Healthy"][1:3] == ("False", "Unhealthy")
    assert conditions["SLOBurnRate"][1:3] == ("True", "FastBurn") and "bad-errors" in conditions["SLOBurnRate"][3]
    assert conditions["TargetsFound"][1:3] == ("True", "AllFound")
    assert summary(later).startswith("UNHEALTHY: 2 resource(s) (1 HEALTHY, 1 UNHEALTHY): bad UNHEALTHY (ErrorRate")


def test_verdict_events_only_on_transitions() -> None:
    stored = {"verdict": "UNHEALTHY", "resources": [
        {"name": "bad", "verdict": "UNHEALTHY", "reasons": ["ErrorRate 12 % > critical 5 %"]},
        {"name": "good", "verdict": "HEALTHY", "reasons": []}]}
    first = verdict_event(None, stored, {})
    assert first is not None and first[0:2] == ("Warning", "VerdictChanged")
    assert first[2].startswith("none -> UNHEALTHY: bad new -> UNHEALTHY (ErrorRate 12 %")
    assert verdict_event("UNHEALTHY", stored, {"bad": "UNHEALTHY", "good": "HEALTHY"}) is None
    recovered = {"verdict": "HEALTHY", "resources": [{"name": "bad", "verdict": "HEALTHY", "reasons": []}]}
    event = verdict_event("UNHEALTHY", recovered, {"bad": "UNHEALTHY"})
    assert event is not None and event[0] == "Normal" and "UNHEALTHY -> HEALTHY" in event[2]


def test_missing_targets_are_named_in_conditions() -> None:
    stored = {"verdict": "UNHEALTHY", "counts": {"NOT_FOUND": 1}, "slos": [], "resources": [
        {"name": "ghost", "id": "ghost-fn", "type": "lambda", "verdict": "NOT_FOUND",
         "source": "spec.targets.resources[1]", "reasons": ["does not exist in AWS"]}]}
    conditions = {c[0]: c for c in check_conditions(stored)}
    assert conditions["TargetsFound"][1:3] == ("False", "TargetNotFound")
    assert "lambda ghost-fn (spec.targets.resources[1])" in conditions["TargetsFound"][3]
    assert "ghost NOT_FOUND (does not exist in AWS (spec.targets.resources[1]))" in summary(stored)
    assert conditions["SLOBurnRate"][1:3] == ("False", "NoObjectives")


def big_resource(index: int, verdict: Verdict) -> ResourceHealth:
    metrics = [MetricResult(name=f"Metric{m}", verdict=verdict, value=1.0, datapoints=5) for m in range(60)]
    return ResourceHealth(id=f"fn-{index}", type=ResourceType.LAMBDA, verdict=verdict, reasons=["x" * 100],
                          metrics=metrics)


def test_status_resources_stay_within_max_items_and_a_byte_budget() -> None:
    resources = [big_resource(i, Verdict.UNHEALTHY if i < 3 else Verdict.HEALTHY) for i in range(150)]
    kept, truncated = report.fit_resources(resources, budget=100_000)
    assert truncated and len(kept) <= 100
    assert sum(len(json.dumps(r.to_wire())) for r in kept) <= 100_000
    assert all(r.metrics for r in kept[:3])  # the worst keep their details; healthy ones lose them first
    assert not kept[-1].metrics
    few, cut = report.fit_resources(resources[:5])
    assert len(few) == 5 and not cut


def test_a_report_too_large_for_its_config_map_sheds_healthy_details_first() -> None:
    document = {"resources": [{"name": f"r{i}", "verdict": "UNHEALTHY" if i == 0 else "HEALTHY",
                               "metrics": [{"name": "m", "reason": "y" * 1000}]} for i in range(10)]}
    smaller = report.shrink(document, 3000)
    assert smaller["resources"][0]["metrics"] and not smaller["resources"][-1]["metrics"]
    assert len(smaller["resources"]) == 10 and not smaller.get("resourcesTruncated")
    smallest = report.shrink(document, 20_000)
    assert smallest["resourcesTruncated"] and len(smallest["resources"]) < 10
    assert document["resources"][-1]["metrics"]  # the input is left alone


def test_scheduling_decisions() -> None:
    entry = Schedule(generation=2, interval=60, suspended=False, due=100.0)
    assert not is_due(entry, 99.0) and is_due(entry, 100.0)
    entry.suspended = True
    assert not is_due(entry, 1000.0)
    entry.requested = "2025-03-20T12:00:00Z"
    assert is_due(entry, 0.0)  # a request runs even while suspended
    entry.running = True
    assert not is_due(entry, 0.0)  # never two checks of one object at once

    checked = {"lastCheck": "2025-03-20T11:59:30Z", "observedGeneration": 2}
    assert first_due(checked, 2, 60, now_wall=NOW, now=500.0) == 530.0  # due 60 s after the last check
    assert first_due(checked, 3, 60, now_wall=NOW, now=500.0) == 500.0  # a new spec: at once
    assert first_due({}, 1, 60, now_wall=NOW, now=500.0) == 500.0
    assert first_due(checked, 2, 10, now_wall=NOW, now=500.0) == 500.0  # overdue


def test_window_is_anchored_when_asked() -> None:
    anchor = EvaluationWindow.model_validate({"anchor": {"at": "2025-03-20T10:00:00Z", "before": "10m",
                                                         "after": "10m"}})
    result, cloudwatch = run(healthy_values("api", errors=12.0), [lam("api")], window=anchor)
    (request,) = cloudwatch.requests
    assert request["StartTime"] == dt.datetime(2025, 3, 20, 9, 30, tzinfo=dt.UTC)  # previous window included
    assert request["EndTime"] == dt.datetime(2025, 3, 20, 10, 10, tzinfo=dt.UTC)
    assert result.window.start == dt.datetime(2025, 3, 20, 9, 50, tzinfo=dt.UTC)
    assert result.verdict == Verdict.UNHEALTHY
