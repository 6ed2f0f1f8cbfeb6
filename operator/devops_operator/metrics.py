"""The one metrics module: every Prometheus metric the operator exports is declared here.

Modules that own a narrower concern (AWS call metering, Kubernetes request counting) declare
their own counters next to the code that increments them; all share the default registry,
which `serve_metrics` exposes on /metrics.
"""

from __future__ import annotations

import contextlib
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

INVESTIGATIONS_TOTAL = Counter(
    "devops_operator_investigations_total",
    "Investigation runs by mode (investigate, query) and result (completed, stalled).",
    ["mode", "result"],
)
INVESTIGATION_EVENTS = Counter(
    "devops_operator_investigation_events_total",
    "Matching log events Investigations read, by mode.",
    ["mode"],
)
REMEDIATIONS_TOTAL = Counter(
    "devops_operator_remediations_total",
    "Remediations that ended, by action, resource type and outcome (Succeeded, RolledBack, Failed, Assessed).",
    ["action", "resource_type", "outcome"],
)
REMEDIATION_ACTIONS_TOTAL = Counter(
    "devops_operator_remediation_actions_total",
    "Actions the operator sent to AWS for Remediations (rollbacks included), by action and resource type.",
    ["action", "resource_type"],
)
REMEDIATION_AWAITING_APPROVAL = Gauge(
    "devops_operator_remediation_awaiting_approval",
    "1 while a Remediation waits for an approval of its impact assessment, 0 otherwise.",
    ["namespace", "name"],
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
    if kind == "Remediation":
        with contextlib.suppress(KeyError):
            REMEDIATION_AWAITING_APPROVAL.remove(namespace, name)


def serve_metrics(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Expose /metrics (the default registry) on a background thread; port 0 picks a free port.

    Returns the server: its ``server_port`` is the port it listens on, ``shutdown()`` stops it.
    """
    server, _ = start_http_server(port, addr=addr)
    return server
