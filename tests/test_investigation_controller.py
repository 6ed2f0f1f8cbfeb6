"""Investigations end to end: the operator against the emulated API and moto (logs, metrics, reports)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.api.common import API_GROUP, API_VERSION, REQUESTED_AT_ANNOTATION
from devops_operator.aws.metering import METER
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import create, minutes_ago, patch, put_logs, put_metric, ready_project, resource_name

from support import condition, wait_for_condition, wait_until

PLURAL = "investigations"
TIMEOUT_LINE = "ERROR Database connection timeout after 3000 ms (attempt {n})"


def investigation(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"projectRef": {"name": "shop"}, "environment": "test"}
    body.update(spec)
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Investigation", "metadata": {"name": name},
            "spec": body}


def seed_lambda(aws_url: str, function: str, now: datetime) -> None:
    """30 minutes of a function's logs and metrics; for the last 10 the database times out."""
    lines = []
    for minute in range(30, 0, -1):
        lines.append((minutes_ago(minute, now), f"INFO request handled in {40 + minute} ms"))
        if minute <= 10:
            lines.append((minutes_ago(minute, now) + timedelta(milliseconds=1), TIMEOUT_LINE.format(n=minute % 3)))
    put_logs(aws_url, f"/aws/lambda/{function}", lines)
    dims = {"FunctionName": function}
    put_metric(aws_url, "AWS/Lambda", "Errors", dims,
               [(minutes_ago(m, now), 12.0 if m <= 10 else 0.0) for m in range(30, 0, -1)])
    put_metric(aws_url, "AWS/Lambda", "Invocations", dims, [(minutes_ago(m, now), 100.0) for m in range(30, 0, -1)])


def report(api: ApiClient, namespace: str, name: str) -> tuple[dict[str, Any], str]:
    configmap = CoreV1Api(api).read_namespaced_config_map(f"{name}-report", namespace)
    return json.loads(configmap.data["report.json"]), configmap.data["report.md"]


def test_an_investigation_names_the_pattern_and_its_probable_cause(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    function = resource_name("test", namespace[-20:].strip("-"))
    seed_lambda(aws_url, function, datetime.now(UTC))
    ready_project(kube_api, namespace)

    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, investigation("db", service=function))
        obj = wait_for_condition(kube_api, PLURAL, namespace, "db", "Ready")

    status = obj["status"]
    assert status["phase"] == "Completed"
    assert status["logGroups"] == [f"/aws/lambda/{function}"]
    assert status["matchCount"] == 10 and status["truncated"] is False
    top = status["patterns"][0]
    assert top["signature"] == "ERROR Database connection timeout after <NUM> ms (attempt <NUM>)"
    assert top["count"] == 10 and top["example"].startswith("ERROR Database connection timeout after 3000 ms")
    cause = status["probableCause"]
    assert cause["summary"].startswith("Timeouts connecting to the database")
    assert cause["confidence"] == "high"
    assert cause["signature"] == top["signature"]
    assert any("Errors of " + function in line and "rose to 12" in line for line in cause["evidence"])
    assert any("action restart on lambda " + function in r for r in status["recommendations"])
    assert status["timeline"]["logPatterns"] == 1 and status["timeline"]["metricAnomalies"] == 1
    # One DescribeLogGroups and one DescribeLogStreams (the group exists and is not empty), one page of
    # FilterLogEvents, one GetMetricData for the function's four anomaly metrics.
    assert status["apiCalls"] == {"filterLogEvents": 1, "startQuery": 0, "getQueryResults": 0, "getMetricData": 1,
                                  "describe": 2, "total": 4, "throttled": 0, "bytesScanned": 0,
                                  "estimatedCostUsd": 0.00004}
    assert measured.count("logs") == 3 and measured.count("cloudwatch", "GetMetricData") == 1

    data, markdown = report(kube_api, namespace, "db")
    assert status["reportConfigMap"] == "db-report"
    assert data["probableCause"]["id"] == "database-timeout"
    assert data["patterns"][0]["count"] == 10 and data["metricAnomalies"][0]["metric"] == "Errors"
    assert [e["kind"] for e in data["timeline"]] == ["metric-anomaly", "log-pattern"]
    assert "## Probable cause" in markdown and "Timeouts connecting to the database" in markdown
    assert "| 10 |" in markdown


def test_query_mode_returns_the_matches_only(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    group = f"/aws/lambda/{resource_name('test', 'query-' + namespace[-12:])}"
    put_logs(aws_url, group, [(minutes_ago(5), "ERROR one"), (minutes_ago(4), "INFO two"),
                              (minutes_ago(3), "ERROR three")])
    ready_project(kube_api, namespace)

    create(kube_api, namespace, PLURAL, investigation("q", logGroups=[group], mode="query", filterPattern="ERROR"))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "q", "Ready")

    status = obj["status"]
    assert status["matchCount"] == 2 and not status.get("patterns") and "probableCause" not in status
    data, markdown = report(kube_api, namespace, "q")
    assert [m["message"] for m in data["matches"]] == ["ERROR one", "ERROR three"]
    assert "## Matches" in markdown and "patterns" not in data
    assert status["apiCalls"]["getMetricData"] == 0


@pytest.mark.parametrize(("max_events", "matched", "truncated", "pages"),
                         [(100, 100, True, 2), (1000, 150, False, 1)], ids=["truncated", "complete"])
def test_paging_stops_at_max_events_and_says_so(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str,
    max_events: int, matched: int, truncated: bool, pages: int,
) -> None:
    group = f"/app/{resource_name('test', namespace)}"
    now = datetime.now(UTC)
    lines = [(now - timedelta(seconds=600 - n), f"ERROR job {n} failed" if n % 2 else f"INFO job {n} done")
             for n in range(300)]
    put_logs(aws_url, group, lines)
    ready_project(kube_api, namespace)

    create(kube_api, namespace, PLURAL, investigation("p", logGroups=[group], maxEvents=max_events))
    status = wait_for_condition(kube_api, PLURAL, namespace, "p", "Ready")["status"]

    # moto lets every event through for the default ?ERROR ?Exception ... pattern; the operator re-applies
    # it, so each page of `maxEvents` events holds half as many matches.
    assert status["matchCount"] == matched and status["truncated"] is truncated
    assert status["apiCalls"]["filterLogEvents"] == pages
    assert status["patterns"][0]["signature"] == "ERROR job <NUM> failed"


def test_logs_insights_is_used_when_asked(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    function = resource_name("test", "insights-" + namespace[-12:])
    seed_lambda(aws_url, function, datetime.now(UTC))
    ready_project(kube_api, namespace)

    create(kube_api, namespace, PLURAL, investigation("i", service=function, useInsights=True, includeMetrics=False))
    status = wait_for_condition(kube_api, PLURAL, namespace, "i", "Ready")["status"]

    # moto ignores the query's filter clause (it honours fields, sort and limit): the local filter keeps the
    # same ten events FilterLogEvents finds. moto reports no statistics, so no bytes scanned.
    assert status["matchCount"] == 10
    assert status["patterns"][0]["count"] == 10
    calls = status["apiCalls"]
    assert calls["startQuery"] == 1 and calls["getQueryResults"] == 1 and calls["filterLogEvents"] == 0
    assert calls["bytesScanned"] == 0
    data, _ = report(kube_api, namespace, "i")
    assert data["source"] == "Logs Insights"


def test_a_requested_at_annotation_runs_it_again(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    group = f"/app/{resource_name('test', 'rerun-' + namespace)}"
    put_logs(aws_url, group, [(minutes_ago(2), "ERROR first")])
    ready_project(kube_api, namespace)
    create(kube_api, namespace, PLURAL, investigation("r", logGroups=[group]))
    assert wait_for_condition(kube_api, PLURAL, namespace, "r", "Ready")["status"]["matchCount"] == 1

    put_logs_more = [(minutes_ago(1), "ERROR second")]
    from ops_support import aws
    aws(aws_url, "logs").put_log_events(logGroupName=group, logStreamName="s1", logEvents=[
        {"timestamp": int(at.timestamp() * 1000), "message": text} for at, text in put_logs_more])
    patch(kube_api, namespace, PLURAL, "r", {"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "now-1"}}})

    status = wait_until(lambda: _handled(kube_api, namespace, "r", "now-1"), what="the second run")
    assert status["matchCount"] == 2


def _handled(api: ApiClient, namespace: str, name: str, request: str) -> dict[str, Any] | None:
    from support import get_custom
    status = get_custom(api, PLURAL, namespace, name).get("status") or {}
    return status if status.get("lastHandledRequest") == request and status.get("phase") == "Completed" else None


# --- bad input: a clear Stalled message naming it, and no search made ---------------------------------------


def _stalled(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj = wait_for_condition(api, PLURAL, namespace, name, "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None
    return stalled


def test_a_missing_log_group_is_named(operator: OperatorThread, kube_api: ApiClient, namespace: str) -> None:
    ready_project(kube_api, namespace)
    with METER.measure() as measured:
        missing = f"/aws/lambda/{resource_name('test', 'missing-' + namespace)}"
        create(kube_api, namespace, PLURAL, investigation("m", logGroups=[missing]))
        stalled = _stalled(kube_api, namespace, "m")
    assert stalled["reason"] == "LogGroupNotFound"
    assert f"spec.logGroups[0]: log group {missing} does not exist" in stalled["message"]
    assert measured.count("logs", "FilterLogEvents") == 0


def test_an_empty_log_group_is_named(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    group = f"/app/{resource_name('test', 'empty-' + namespace)}"
    put_logs(aws_url, group, [])
    ready_project(kube_api, namespace)
    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, investigation("e", logGroups=[group]))
        stalled = _stalled(kube_api, namespace, "e")
    assert stalled["reason"] == "EmptyLogGroup"
    assert f"log group {group} holds no log streams (empty)" in stalled["message"]
    assert measured.count("logs", "FilterLogEvents") == 0


def test_a_timeframe_in_the_future_is_refused_before_any_call(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    ready_project(kube_api, namespace)
    later = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, investigation("f", logGroups=["/app/any"], timeframe={"start": later}))
        stalled = _stalled(kube_api, namespace, "f")
    assert stalled["reason"] == "TimeframeInFuture"
    assert stalled["message"].startswith(f"spec.timeframe.start: {later} is in the future")
    assert measured.count("logs") == 0


def test_a_timeframe_longer_than_retention_is_refused(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    group = f"/app/{resource_name('test', 'retention-' + namespace)}"
    put_logs(aws_url, group, [(minutes_ago(5), "ERROR x")], retention_days=1)
    ready_project(kube_api, namespace)
    with METER.measure() as measured:
        create(kube_api, namespace, PLURAL, investigation("t", logGroups=[group], timeframe={"lastMinutes": 4320}))
        stalled = _stalled(kube_api, namespace, "t")
    assert stalled["reason"] == "TimeframeBeyondRetention"
    assert f"log group {group} keeps events for 1 days (retentionInDays)" in stalled["message"]
    assert measured.count("logs", "FilterLogEvents") == 0


def test_a_service_that_does_not_exist_is_named(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    ready_project(kube_api, namespace)
    nothing = resource_name("test", f"nothing-{namespace}")
    create(kube_api, namespace, PLURAL, investigation("s", service=nothing))
    stalled = _stalled(kube_api, namespace, "s")
    assert stalled["reason"] == "ServiceNotFound"
    assert f"spec.service: '{nothing}' is not in the resource registry" in stalled["message"]
    assert f"/aws/lambda/{nothing}" in stalled["message"]


def test_an_investigation_waits_for_its_project(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    group = f"/app/{resource_name('test', 'wait-' + namespace)}"
    put_logs(aws_url, group, [(minutes_ago(2), "ERROR late")])
    create(kube_api, namespace, PLURAL, investigation("w", logGroups=[group]))
    waiting = wait_until(lambda: condition(_get(kube_api, namespace, "w"), "Reconciling"), what="a quiet wait")
    assert waiting["reason"] == "ProjectNotFound"
    ready_project(kube_api, namespace)
    assert wait_for_condition(kube_api, PLURAL, namespace, "w", "Ready", timeout=30)["status"]["matchCount"] == 1


def _get(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    from support import get_custom
    return get_custom(api, PLURAL, namespace, name)


def test_the_timeline_holds_the_projects_remediations(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    from ops_support import create_function
    from test_remediation_actions import remediation, succeeded
    function = resource_name("test", "tl-" + namespace[-12:])
    create_function(aws_url, function)
    seed_lambda(aws_url, function, datetime.now(UTC))
    ready_project(kube_api, namespace)
    create(kube_api, namespace, "remediations", remediation("restart", {"type": "lambda", "id": function},
                                                            "restart"))
    succeeded(kube_api, namespace, "restart")

    create(kube_api, namespace, PLURAL, investigation("tl", service=function))
    status = wait_for_condition(kube_api, PLURAL, namespace, "tl", "Ready")["status"]

    assert status["timeline"]["remediations"] == 1
    data, _ = report(kube_api, namespace, "tl")
    [entry] = [e for e in data["timeline"] if e["kind"] == "remediation"]
    assert entry["summary"] == f"remediation {namespace}/restart: restart lambda/{function}: Succeeded"
