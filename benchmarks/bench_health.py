"""HealthCheck over N resources x 4 metrics against moto: the operator's batched check, side by side with the
one-call-per-metric approach (GetMetricStatistics per metric) measured in the same run on the same data.

For each size, a fresh stack (emulated Kubernetes, moto, the operator): N Lambda functions, each with its
four series (Invocations, Errors, Throttles, Duration) holding one datapoint in the window and one in the
previous window; one HealthCheck naming all N. Its status says what the check cost (GetMetricData calls,
metrics requested, dollars, wall and CPU time of the check); the benchmark fails unless GetMetricData was
called exactly ceil(4N/500) times. Then the same N x 4 series are read one GetMetricStatistics call each,
as Cloud Custodian does, with the wall and CPU time of the calling thread.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import urllib.request
import zipfile
from typing import Any

import boto3
from kubernetes.client import CustomObjectsApi

from benchmarks.harness import Timer, scaled, stack
from devops_operator.api.common import API_GROUP, API_VERSION, REQUESTED_AT_ANNOTATION
from devops_operator.aws.cloudwatch import USD_PER_METRIC_REQUESTED, calls_needed
from devops_operator.aws.metering import AwsCallMeter
from devops_operator.kube import client as kube_client
from devops_operator.sandbox.runner import settled

SIZES = (10, 100, 500)
METRICS = (("Invocations", "Sum", 100.0), ("Errors", "Sum", 1.0), ("Throttles", "Sum", 0.0),
           ("Duration", "Average", 120.0))
USD_PER_STATISTICS_REQUEST = 0.01 / 1000  # GetMetricStatistics: $0.01 per 1,000 requests (one metric each)
NAMESPACE = "bench-health"


def _reset(url: str) -> None:
    """moto's backends live in the process, not the server: start every size from an empty account."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        return


def _seed(url: str, count: int) -> list[str]:
    _reset(url)
    session = boto3.session.Session(region_name="us-east-1")
    iam, lam, cloudwatch = (session.client(s, endpoint_url=url) for s in ("iam", "lambda", "cloudwatch"))
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
    names = [f"bench-fn-{i:04d}" for i in range(count)]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    data = []
    for name in names:
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
                            Code={"ZipFile": code.getvalue()})
        dims = [{"Name": "FunctionName", "Value": name}]
        for back in (2, 7):  # one datapoint in the 5-minute window, one in the window before it
            moment = now - dt.timedelta(minutes=back) + dt.timedelta(seconds=5)
            data += [{"MetricName": m, "Dimensions": dims, "Timestamp": moment, "Value": v} for m, _, v in METRICS]
    for start in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[start:start + 1000])
    return names


def _operator_check(count: int, names: list[str], timeout: float) -> dict[str, Any]:
    custom = CustomObjectsApi(kube_client.api_client())
    project = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "shop"},
               "spec": {"project": "shop", "environments": [{"name": "test", "autoApprove": True}]}}
    custom.create_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "devopsprojects", project)
    deadline = time.monotonic() + timeout
    while settled(custom.get_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "devopsprojects",
                                                      "shop")) is not True:
        if time.monotonic() > deadline:
            raise RuntimeError("the DevOpsProject did not become Ready")
        time.sleep(0.05)
    check = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "HealthCheck", "metadata": {"name": "estate"},
             "spec": {"projectRef": {"name": "shop"}, "environment": "test", "interval": "1h",
                      "window": {"lastMinutes": 5},
                      "targets": {"resources": [{"type": "lambda", "id": name} for name in names]}}}
    with Timer() as timer:
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "healthchecks", check)
        cold = _wait_checked(custom, 1, count, timeout)
    # The first check also builds the AWS clients (service models parsed once per process): a second check,
    # requested at once, is what every later check costs.
    custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "healthchecks", "estate", {
        "metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "bench"}}})
    warm = _wait_checked(custom, 2, count, timeout)
    expected = calls_needed(4 * count)
    for status in (cold, warm):
        calls = status["apiCalls"]
        if calls["getMetricData"] != expected:
            raise RuntimeError(f"{count} resources x 4 metrics took {calls['getMetricData']} GetMetricData calls, "
                               f"not ceil(4N/500) = {expected}")
    calls = warm["apiCalls"]
    return {
        "verdict": warm["verdict"],
        "seconds_until_first_status": round(timer.seconds, 3),
        "first_check_seconds": cold["apiCalls"]["durationSeconds"],
        "first_check_cpu_seconds": cold["apiCalls"]["cpuSeconds"],
        "check_seconds": calls["durationSeconds"],
        "check_cpu_seconds": calls["cpuSeconds"],
        "get_metric_data_calls": calls["getMetricData"],
        "other_aws_calls": calls["total"] - calls["getMetricData"],
        "metrics_requested": calls["metricsRequested"],
        "cost_usd": calls["estimatedCostUsd"],
    }


def _wait_checked(custom: CustomObjectsApi, checks: int, count: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        obj = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, "healthchecks", "estate")
        status = obj.get("status") or {}
        if settled(obj) is not None and len(status.get("history") or []) >= checks:
            return dict(status)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the HealthCheck over {count} resources did not check within {timeout:.0f}s")
        time.sleep(0.1)


def _one_call_per_metric(url: str, names: list[str]) -> dict[str, Any]:
    session = boto3.session.Session(region_name="us-east-1")
    meter = AwsCallMeter()
    meter.attach(session)
    cloudwatch = session.client("cloudwatch", endpoint_url=url)
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    start = end - dt.timedelta(minutes=10)
    with meter.measure() as calls, Timer() as timer:
        cpu = time.thread_time()
        for name in names:
            for metric, statistic, _ in METRICS:
                cloudwatch.get_metric_statistics(
                    Namespace="AWS/Lambda", MetricName=metric, StartTime=start, EndTime=end, Period=60,
                    Statistics=[statistic], Dimensions=[{"Name": "FunctionName", "Value": name}])
        cpu = time.thread_time() - cpu
    requests = calls.count("cloudwatch", "GetMetricStatistics")
    return {
        "seconds": round(timer.seconds, 3),
        "cpu_seconds": round(cpu, 4),
        "get_metric_statistics_calls": requests,
        "cost_usd": round(requests * USD_PER_STATISTICS_REQUEST, 6),
    }


def run_one(count: int, timeout: float = 900.0) -> dict[str, Any]:
    with stack() as running:
        with Timer() as seeding:
            names = _seed(running.aws_url, count)
        batched = _operator_check(count, names, timeout)
        naive = _one_call_per_metric(running.aws_url, names)
    return {
        "resources": count,
        "metrics_per_resource": len(METRICS),
        "seed_seconds": round(seeding.seconds, 1),
        "healthcheck": batched,
        "one_call_per_metric": naive,
        "aws_calls_saved": naive["get_metric_statistics_calls"] - batched["get_metric_data_calls"],
        "usd_per_metric": USD_PER_METRIC_REQUESTED,
    }


def run(scale: float = 1.0) -> dict[str, Any]:
    counts = sorted({scaled(size, scale) for size in SIZES})
    return {"runs": [run_one(count) for count in counts]}
