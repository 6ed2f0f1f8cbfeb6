"""The one metrics module: every Prometheus metric the operator exports is declared here.

Modules that own a narrower concern (AWS call metering, Kubernetes request counting) declare
their own counters next to the code that increments them; all share the default registry,
which `serve_metrics` exposes on /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILE_TOTAL = Counter(
    "devops_operator_reconcile_total",
    "Reconciliations by kind and outcome (success, stalled, retry, error).",
    ["kind", "outcome"],
)
RECONCILE_DURATION = Histogram(
    "devops_operator_reconcile_duration_seconds",
    "Duration of one reconciliation by kind and outcome.",
    ["kind", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RESOURCE_READY = Gauge(
    "devops_operator_resource_ready",
    "1 when the object's Ready condition is True, 0 otherwise.",
    ["kind", "namespace", "name"],
)
RESOURCE_STALLED = Gauge(
    "devops_operator_resource_stalled",
    "1 when the object is Stalled (its spec cannot work as written), 0 otherwise.",
    ["kind", "namespace", "name"],
)

# InfraDeployment (Terraform in runner Jobs).
TERRAFORM_PLAN_DURATION = Histogram(
    "devops_operator_terraform_plan_duration_seconds",
    "Duration of a runner Job's plan step (init, validate, plan, show), by engine.",
    ["engine"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
TERRAFORM_APPLY_DURATION = Histogram(
    "devops_operator_terraform_apply_duration_seconds",
    "Duration of a runner Job's apply step, by engine.",
    ["engine"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
TERRAFORM_PLANNED_RESOURCES = Gauge(
    "devops_operator_terraform_planned_resources",
    "Resources the current plan of a deployment would add, change, destroy or replace.",
    ["namespace", "name", "action"],
)
APPROVAL_PENDING_OLDEST = Gauge(
    "devops_operator_approval_pending_oldest_seconds",
    "Age of the oldest approval still pending, by kind (0 when none waits).",
    ["kind"],
)
TERRAFORM_JOB_FAILURES = Counter(
    "devops_operator_terraform_job_failures_total",
    "Runner Jobs that failed, by step and reason (Error, OOMKilled, ImagePullBackOff, DeadlineExceeded, ...).",
    ["step", "reason"],
)
TERRAFORM_STALE_PLANS = Counter(
    "devops_operator_terraform_stale_plans_total",
    "Saved plans found stale at apply time (the state moved) and re-planned for a new approval.",
)


class Outcome:
    SUCCESS = "success"
    STALLED = "stalled"
    RETRY = "retry"
    ERROR = "error"


@contextmanager
def reconcile_timer(kind: str) -> Iterator[dict[str, str]]:
    """Time one reconciliation; the body sets `outcome["value"]`, an exception counts as error."""
    outcome = {"value": Outcome.SUCCESS}
    started = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        if outcome["value"] == Outcome.SUCCESS:
            outcome["value"] = Outcome.ERROR
        raise
    finally:
        labels = (kind, outcome["value"])
        RECONCILE_TOTAL.labels(*labels).inc()
        RECONCILE_DURATION.labels(*labels).observe(time.perf_counter() - started)


def record_readiness(kind: str, namespace: str, name: str, *, ready: bool, stalled: bool) -> None:
    RESOURCE_READY.labels(kind, namespace, name).set(1 if ready else 0)
    RESOURCE_STALLED.labels(kind, namespace, name).set(1 if stalled else 0)


def forget_resource(kind: str, namespace: str, name: str) -> None:
    """Drop a deleted object's series so dashboards do not show ghosts."""
    for gauge in (RESOURCE_READY, RESOURCE_STALLED):
        try:
            gauge.remove(kind, namespace, name)
        except KeyError:
            continue


def serve_metrics(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Expose /metrics (the default registry) on a background thread; port 0 picks a free port.

    Returns the server: its ``server_port`` is the port it listens on, ``shutdown()`` stops it.
    """
    server, _ = start_http_server(port, addr=addr)
    return server
