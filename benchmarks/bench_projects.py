"""N DevOpsProjects created at once: wall time until all are Ready, requests and AWS calls per object."""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client import CustomObjectsApi

from benchmarks.harness import Timer, max_rss_mib, scaled, stack
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.aws.metering import METER
from devops_operator.kube import client as kube_client
from devops_operator.sandbox.runner import settled


def manifest(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject",
        "metadata": {"name": f"project-{index:04d}"},
        "spec": {"environments": [{"name": "test", "autoApprove": True}, {"name": "prod", "production": True}]},
    }


def run_one(count: int, namespace: str, timeout: float = 600.0) -> dict[str, Any]:
    with stack() as running:
        api = kube_client.api_client()
        custom = CustomObjectsApi(api)
        served_before = running.kube.emulator.requests_served
        with METER.measure() as aws_calls, Timer() as timer:
            for index in range(count):
                custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects",
                                                       manifest(index))
            deadline = time.monotonic() + timeout
            polls = 0
            while True:
                polls += 1
                items = custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                             "devopsprojects")["items"]
                ready = sum(1 for item in items if settled(item) is True)
                if ready == count or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        if ready != count:
            raise RuntimeError(f"only {ready} of {count} projects became Ready within {timeout:.0f}s")
        # Requests by anyone (the operator's kopf and client, and this benchmark's creates and polls).
        served = running.kube.emulator.requests_served - served_before
        operator_requests = served - count - polls
        return {
            "projects": count,
            "seconds_until_all_ready": round(timer.seconds, 3),
            "projects_per_second": round(count / timer.seconds, 1),
            "kube_requests_by_operator": operator_requests,
            "kube_requests_per_project": round(operator_requests / count, 2),
            "aws_calls": aws_calls.total,
            "aws_calls_per_project": round(aws_calls.total / count, 2),
            "max_rss_mib": round(max_rss_mib(), 1),
        }


SIZES = (10, 100)


def run(scale: float = 1.0) -> dict[str, Any]:
    counts = sorted({scaled(size, scale) for size in SIZES})
    return {"runs": [run_one(count, f"bench-{count}") for count in counts]}
