"""Verification after acting, through the HealthCheck evaluator, against moto: a pass, a failure rolled back
through the registry's inverse, a failure without an inverse, and a HealthCheck's own thresholds.

CloudWatch (and the evaluator) align datapoints to whole minutes, and only minutes after the action
count, so the first check comes one whole minute after it: these four remediations run side by side to
wait for that minute once. The test plays the function's traffic: it publishes the datapoints of that
minute as soon as each action is recorded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kubernetes.client import ApiClient

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.healthcheck import parse_rfc3339
from devops_operator.ops.remediation.health import window_start
from devops_operator.sandbox.operator_thread import OperatorThread
from ops_support import aws, create, create_function, put_metric, ready_project, resource_name
from test_remediation_actions import log_entries, remediation, short

from support import condition, get_custom, wait_until

PLURAL = "remediations"
VERIFY = {"delay": "5s", "timeout": "10s"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def traffic(aws_url: str, function: str, acted_at: str, *, errors: float) -> None:
    """One minute of the function's traffic right after the action: 100 invocations, `errors` of them failed."""
    at = window_start(parse_rfc3339(acted_at)) + timedelta(seconds=5)
    dims = {"FunctionName": function}
    put_metric(aws_url, "AWS/Lambda", "Invocations", dims, [(at, 100.0)])
    put_metric(aws_url, "AWS/Lambda", "Errors", dims, [(at, errors)])
    put_metric(aws_url, "AWS/Lambda", "Duration", dims, [(at, 120.0)])


def acted(api: ApiClient, namespace: str, name: str) -> str:
    def check() -> str | None:
        status = get_custom(api, PLURAL, namespace, name).get("status") or {}
        done = (status.get("actionResult") or {}).get("completedAt")
        return str(done) if done and status.get("phase") == "Verifying" else None
    return wait_until(check, timeout=30, what=f"{name} acted and verifying")


def ended(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get_custom(api, PLURAL, namespace, name)
        return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "RolledBack", "Failed") else None
    return wait_until(check, timeout=150, interval=0.5, what=f"{name} to end")


def test_verification_passes_rolls_back_or_fails_with_the_evidence(
    operator: OperatorThread, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    tag = short(namespace)
    healthy, scaled, broken, lenient = (resource_name("test", f"{n}-{tag}") for n in ("ok", "sc", "bad", "len"))
    for function in (healthy, scaled, broken, lenient):
        create_function(aws_url, function)
    ready_project(kube_api, namespace)
    create(kube_api, namespace, "healthchecks", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "HealthCheck", "metadata": {"name": "lenient"},
        "spec": {"projectRef": {"name": "shop"}, "environment": "test", "interval": "1h",
                 "targets": {"resources": [{"type": "lambda", "id": lenient}]},
                 "metrics": [{"type": "lambda", "metrics": [
                     {"name": "ErrorRate", "threshold": {"warning": 50, "critical": 80}}]}]},
    })

    create(kube_api, namespace, PLURAL, remediation("ok", {"type": "lambda", "id": healthy}, "restart",
                                                    verification=VERIFY))
    create(kube_api, namespace, PLURAL, remediation("sc", {"type": "lambda", "id": scaled}, "scale",
                                                    parameters={"reservedConcurrency": 3}, verification=VERIFY))
    create(kube_api, namespace, PLURAL, remediation("bad", {"type": "lambda", "id": broken}, "restart",
                                                    verification=VERIFY))
    create(kube_api, namespace, PLURAL, remediation("len", {"type": "lambda", "id": lenient}, "restart",
                                                    verification={**VERIFY, "healthCheckRef": {"name": "lenient"}}))
    traffic(aws_url, healthy, acted(kube_api, namespace, "ok"), errors=0)
    traffic(aws_url, scaled, acted(kube_api, namespace, "sc"), errors=50)
    traffic(aws_url, broken, acted(kube_api, namespace, "bad"), errors=50)
    traffic(aws_url, lenient, acted(kube_api, namespace, "len"), errors=30)

    ok = ended(kube_api, namespace, "ok")
    assert ok["status"]["phase"] == "Succeeded", ok["status"]
    verification = ok["status"]["verification"]
    assert verification["passed"] is True and verification["verdict"] == "HEALTHY"
    assert verification["source"] == "built-in check" and verification["checks"] == 1
    assert condition(ok, "Verified")["status"] == "True" and condition(ok, "Ready")["status"] == "True"

    rolled = ended(kube_api, namespace, "sc")
    status = rolled["status"]
    assert status["phase"] == "RolledBack", status
    assert status["verification"]["verdict"] == "UNHEALTHY" and status["verification"]["passed"] is False
    assert any("ErrorRate" in reason for reason in status["verification"]["reasons"])
    assert status["rollback"]["succeeded"] is True and status["rollback"]["action"] == "scale"
    assert status["rollback"]["restored"] == {"reservedConcurrency": "unreserved"}
    assert "ReservedConcurrentExecutions" not in aws(aws_url, "lambda").get_function_concurrency(FunctionName=scaled)
    assert condition(rolled, "Stalled")["reason"] == "RolledBack"

    failed = ended(kube_api, namespace, "bad")
    assert failed["status"]["phase"] == "Failed"
    assert failed["status"]["rollback"] == {
        "attempted": False, "request": {}, "restored": {},
        "message": "no rollback: self-healing: a restart changes no setting a rollback could put back"}
    assert condition(failed, "Stalled")["reason"] == "VerificationFailed"
    assert condition(failed, "Verified")["status"] == "False"

    lenient_run = ended(kube_api, namespace, "len")
    assert lenient_run["status"]["phase"] == "Succeeded", lenient_run["status"]
    assert lenient_run["status"]["verification"]["source"] == "HealthCheck lenient"

    outcomes = {entry["name"]: entry["outcome"] for entry in log_entries(kube_api, namespace)}
    assert outcomes == {"ok": "Succeeded", "sc": "RolledBack", "bad": "Failed", "len": "Succeeded"}
