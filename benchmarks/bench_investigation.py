"""An Investigation over a 5,000-event log group against moto: wall time and AWS calls.

A Lambda-style log group with 5,000 events in the last hour (a fifth of them errors of six kinds, the
rest INFO lines), the function's metrics, and one Investigation through the running operator: the
clock runs from creating the Investigation to its Completed status. The AWS requests are the exact
figures (from the status, and checked against the call meter); wall time against moto is indicative.
The same search through Logs Insights is measured too.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from kubernetes.client import CustomObjectsApi

from benchmarks.harness import Timer, scaled, stack
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.aws.metering import METER
from devops_operator.kube import client as kube_client
from devops_operator.sandbox.aws import SANDBOX_REGION

EVENTS = 5_000
ERRORS = (
    "ERROR Database connection timeout after {n} ms (attempt {m})",
    "ERROR ThrottlingException: Rate exceeded (request {uuid})",
    "ERROR Task timed out after {n}.00 seconds",
    "ERROR connect ECONNREFUSED 10.0.{m}.{n}:5432",
    "ERROR java.lang.OutOfMemoryError: Java heap space in worker-{n}",
    "ERROR AccessDenied: not authorized to perform s3:GetObject on key {uuid}",
)
NAMESPACE = "bench-investigation"
FUNCTION = "acme-shop-core-test-benchapi"


def seed(aws_url: str, events: int) -> None:
    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_url, region_name=SANDBOX_REGION)  # type: ignore[call-overload]

    logs = client("logs")
    group = f"/aws/lambda/{FUNCTION}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = datetime.now(UTC)
    batch = []
    for index in range(events):
        at = now - timedelta(seconds=3500 * (events - index) / events)
        if index % 5 == 0:
            text = ERRORS[(index // 5) % len(ERRORS)].format(n=index % 997, m=index % 7,
                                                                uuid=f"{index:08x}-0000-4000-8000-{index:012x}")
        else:
            text = f"INFO request {index} handled in {index % 300} ms"
        batch.append({"timestamp": int(at.timestamp() * 1000), "message": text})
    for start in range(0, len(batch), 5000):
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=batch[start:start + 5000])
    cloudwatch = client("cloudwatch")
    data = [{"MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}],
             "Timestamp": now - timedelta(minutes=m), "Value": value}
            for m in range(60, 0, -1) for name, value in (("Invocations", 100.0), ("Errors", 20.0 if m < 20 else 0.0))]
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[start:start + 20])


def wait_completed(custom: CustomObjectsApi, name: str, timeout: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "investigations", name)
        status = obj.get("status") or {}
        if status.get("phase") in ("Completed", "Stalled"):
            assert status["phase"] == "Completed", status.get("message")
            return dict(status)
        time.sleep(0.05)
    raise AssertionError(f"investigation {name} did not complete within {timeout}s")


def investigate(custom: CustomObjectsApi, name: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Investigation", "metadata": {"name": name},
            "spec": {"projectRef": {"name": "shop"}, "environment": "test", "service": FUNCTION,
                     "maxEvents": 10_000, "timeframe": {"lastMinutes": 60}, **spec}}
    with METER.measure() as measured, Timer() as timer:
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "investigations", body)
        status = wait_completed(custom, name)
    calls = status["apiCalls"]
    assert calls["total"] == measured.count("logs") + measured.count("cloudwatch"), (calls, measured.snapshot())
    return {
        "seconds_until_completed": round(timer.seconds, 3),
        "matching_events": status["matchCount"],
        "patterns": len(status.get("patterns") or []),
        "probable_cause": (status.get("probableCause") or {}).get("summary"),
        "confidence": (status.get("probableCause") or {}).get("confidence"),
        "aws_calls": {k: v for k, v in calls.items() if k != "estimatedCostUsd"},
        "estimated_cost_usd": calls["estimatedCostUsd"],
    }


def run(scale: float = 1.0) -> dict[str, Any]:
    events = scaled(EVENTS, scale)
    with stack() as running:
        seed(running.aws_url, events)
        api = kube_client.new_api_client(running.kube.url)
        custom = CustomObjectsApi(api)
        project = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "shop"},
                   "spec": {"project": "shop", "subsystem": "core", "organization": "acme",
                            "naming": {"pattern": "{organization}-{project}-{subsystem}-{environment}-{resource}"},
                            "environments": [{"name": "test"}]}}
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "devopsprojects", project)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "devopsprojects", "shop")
            if (got.get("status") or {}).get("phase") == "Ready":
                break
            time.sleep(0.05)
        result = {"events_in_log_group": events,
                  "filter_log_events": investigate(custom, "bench-filter"),
                  "logs_insights": investigate(custom, "bench-insights", useInsights=True)}
        api.close()
        return result
