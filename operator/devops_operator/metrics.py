"""The one metrics module: every Prometheus metric the operator exports is declared here.

Modules that own a narrower concern (AWS call metering, Kubernetes request counting) declare
their own counters next to the code that increments them; all share the default registry,
which `serve_metrics` exposes on /metrics.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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
# InfraDeployment day 2: the inputs of alerts (drift, stale locks, blocked deletions, applies held by a window).
INFRA_DRIFTED_RESOURCES = Gauge(
    "devops_operator_infradeployment_drifted_resources",
    "Resources the last drift check found changed outside Terraform (0: no drift).",
    ["namespace", "name"],
)
INFRA_LAST_APPLY = Gauge(
    "devops_operator_infradeployment_last_apply_timestamp_seconds",
    "When the last successful apply finished (Unix time); alert on time() - this.",
    ["namespace", "name"],
)
TERRAFORM_STALE_LOCKS = Gauge(
    "devops_operator_terraform_stale_locks",
    "1 while a deployment's state lock is held by a pod that no longer exists.",
    ["namespace", "name"],
)
TERRAFORM_LOCK_RELEASES = Counter(
    "devops_operator_terraform_lock_releases_total",
    "State locks released by the operator, by how (auto: environment policy; annotation: asked for).",
    ["how"],
)
INFRA_DELETION_BLOCKED = Gauge(
    "devops_operator_infradeployment_deletion_blocked",
    "1 while a deletion cannot complete (the destroy fails, the project is gone, ...); see status.deletion.",
    ["namespace", "name"],
)
INFRA_WAITING_FOR_WINDOW = Gauge(
    "devops_operator_infradeployment_waiting_for_window",
    "1 while an approved plan (or a plan) waits for the environment's change window to open.",
    ["namespace", "name"],
)
INFRA_DAY2_GAUGES = (INFRA_DRIFTED_RESOURCES, INFRA_LAST_APPLY, TERRAFORM_STALE_LOCKS, INFRA_DELETION_BLOCKED,
                     INFRA_WAITING_FOR_WINDOW)
# Investigation and Remediation.
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
APPROVAL_POLICY_INSTALLED = Gauge(
    "devops_operator_approval_policy_installed",
    "1 when the approval admission policy (config/admission/) and a Deny binding of it exist, 0 when not, "
    "-1 when the operator cannot tell (it may not read them).",
    ["policy"],
)
APPROVALS_REFUSED = Counter(
    "devops_operator_approvals_refused_total",
    "Manual approvals the operator refused: the admission policies it was told to require are not enforced "
    "(ApprovalPolicyNotEnforced), or the two-person rule (SameApprover, SpecAuthorUnknown).",
    ["kind", "reason"],
)
REMEDIATION_AWAITING_APPROVAL = Gauge(
    "devops_operator_remediation_awaiting_approval",
    "1 while a Remediation waits for an approval of its impact assessment, 0 otherwise.",
    ["namespace", "name"],
)

# The scheduler (controllers/wakeups.py): every "look again later" and the long work kept off kopf's handlers.
# The lateness histogram's namespace label is bounded: the first SCHEDULER_NAMESPACES namespaces seen have
# their own series, any later one is counted as "other".
SCHEDULER_NAMESPACES = 100
SCHEDULER_QUEUE_DEPTH = Gauge(
    "devops_operator_scheduler_queue_depth",
    "Work that is due and waits for a worker of the scheduler.",
)
SCHEDULER_SCHEDULED = Gauge(
    "devops_operator_scheduler_scheduled",
    "Objects with a moment to be looked at again that has not come yet.",
)
SCHEDULER_IN_FLIGHT = Gauge(
    "devops_operator_scheduler_in_flight",
    "Work running on the scheduler's workers now, by kind.",
    ["kind"],
)
SCHEDULER_LATENESS = Histogram(
    "devops_operator_scheduler_lateness_seconds",
    "How long after its moment (or its submission) work started, by namespace (bounded: later ones are other).",
    ["namespace"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SCHEDULER_TIMEOUTS = Counter(
    "devops_operator_scheduler_timeouts_total",
    "Work that ran longer than the scheduler's timeout (DEVOPS_OPERATOR_WORK_TIMEOUT_SECONDS), by kind.",
    ["kind"],
)
_scheduler_namespaces: set[str] = set()
_scheduler_namespaces_lock = threading.Lock()


def scheduler_namespace(namespace: str) -> str:
    """The lateness histogram's label for a namespace: itself while fewer than the bound are known."""
    with _scheduler_namespaces_lock:
        if namespace in _scheduler_namespaces:
            return namespace
        if len(_scheduler_namespaces) < SCHEDULER_NAMESPACES:
            _scheduler_namespaces.add(namespace)
            return namespace
    return "other"


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
    if kind == "InfraDeployment":
        for gauge in INFRA_DAY2_GAUGES:
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)


# --- HealthCheck ----------------------------------------------------------------------------------------
# Labels stay bounded: one series set per HealthCheck object, resources capped at HEALTH_GAUGE_RESOURCES
# (worst first, as in status), metrics by what a resource is judged by, SLO windows fixed; label values
# are cut at HEALTH_LABEL_CHARS. Series of a resource that left the check, or of a deleted HealthCheck,
# are removed.

HEALTH_GAUGE_RESOURCES = 100
HEALTH_LABEL_CHARS = 128
HEALTH_VERDICTS = ("HEALTHY", "DEGRADED", "UNHEALTHY", "NO_DATA", "NOT_FOUND")

HEALTH_VERDICT = Gauge(
    "devops_operator_health_verdict",
    "1 for the HealthCheck's overall verdict, 0 for the other verdicts.",
    ["namespace", "name", "verdict"],
)
HEALTH_RESOURCE_VERDICT = Gauge(
    "devops_operator_health_resource_verdict",
    "1 for the resource's verdict in its HealthCheck, 0 for the other verdicts.",
    ["namespace", "name", "resource", "type", "verdict"],
)
HEALTH_METRIC_VALUE = Gauge(
    "devops_operator_health_metric_value",
    "The value a HealthCheck judged for a resource's metric (absent without datapoints).",
    ["namespace", "name", "resource", "metric"],
)
HEALTH_SLO_BURN_RATE = Gauge(
    "devops_operator_health_slo_burn_rate",
    "An SLO's burn rate over an alerting window (1: spending exactly the error budget).",
    ["namespace", "name", "slo", "window"],
)
HEALTH_SLO_ERROR_BUDGET = Gauge(
    "devops_operator_health_slo_error_budget_remaining_percent",
    "Percent of an SLO's error budget left over its window (negative once overspent).",
    ["namespace", "name", "slo"],
)
HEALTH_SLO_SLI = Gauge(
    "devops_operator_health_slo_sli_percent",
    "An SLO's indicator: percent of good datapoints over its window.",
    ["namespace", "name", "slo"],
)
HEALTH_CHECKS = Counter(
    "devops_operator_health_checks_total",
    "HealthCheck checks by outcome (checked, stalled, waiting, failed).",
    ["outcome"],
)
HEALTH_CHECK_AWS_REQUESTS = Counter(
    "devops_operator_health_check_aws_requests_total",
    "AWS requests HealthChecks made, by check and kind (GetMetricData, other).",
    ["namespace", "name", "kind"],
)
HEALTH_CHECK_METRICS_REQUESTED = Counter(
    "devops_operator_health_check_metrics_requested_total",
    "Metric queries HealthChecks sent to GetMetricData (what it bills).",
    ["namespace", "name"],
)
HEALTH_CHECK_COST = Counter(
    "devops_operator_health_check_cost_usd_total",
    "What HealthChecks cost in GetMetricData at list price ($0.01 per 1,000 metrics requested).",
    ["namespace", "name"],
)
HEALTH_CHECK_DURATION = Histogram(
    "devops_operator_health_check_duration_seconds",
    "Wall time of one HealthCheck check (AWS calls included).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
HEALTH_CHECK_CPU = Histogram(
    "devops_operator_health_check_cpu_seconds",
    "The operator's own CPU time for one HealthCheck check (what AWS latency does not hide).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


@dataclass(frozen=True)
class ResourceGauge:
    resource: str
    type: str
    verdict: str
    values: Mapping[str, float] = field(default_factory=dict)  # metric -> value judged


@dataclass(frozen=True)
class SloGauge:
    slo: str
    sli: float | None
    budget: float | None
    burn_rates: Mapping[str, float | None] = field(default_factory=dict)


_health_lock = threading.Lock()
_health_series: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}


def _label(value: str) -> str:
    return value[:HEALTH_LABEL_CHARS]


def record_health(namespace: str, name: str, verdict: str, resources: Iterable[ResourceGauge],
                  slos: Iterable[SloGauge]) -> None:
    """Export one check's gauges; series the previous check exported and this one did not are removed."""
    exported: set[tuple[Gauge, tuple[str, ...]]] = set()

    def put(gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        gauge.labels(*labels).set(value)
        exported.add((gauge, labels))

    for option in HEALTH_VERDICTS:
        put(HEALTH_VERDICT, (namespace, name, option), 1.0 if option == verdict else 0.0)
    for index, resource in enumerate(resources):
        if index >= HEALTH_GAUGE_RESOURCES:
            break
        label = _label(resource.resource)
        for option in HEALTH_VERDICTS:
            put(HEALTH_RESOURCE_VERDICT, (namespace, name, label, resource.type, option),
                1.0 if option == resource.verdict else 0.0)
        for metric, value in resource.values.items():
            put(HEALTH_METRIC_VALUE, (namespace, name, label, _label(metric)), value)
    for item in slos:
        label = _label(item.slo)
        if item.sli is not None:
            put(HEALTH_SLO_SLI, (namespace, name, label), item.sli)
        if item.budget is not None:
            put(HEALTH_SLO_ERROR_BUDGET, (namespace, name, label), item.budget)
        for window, rate in item.burn_rates.items():
            if rate is not None:
                put(HEALTH_SLO_BURN_RATE, (namespace, name, label, window), rate)
    with _health_lock:
        stale = _health_series.get((namespace, name), set()) - exported
        _health_series[(namespace, name)] = exported
    _remove(stale)


def record_health_check_cost(namespace: str, name: str, *, get_metric_data: int, other_requests: int,
                             metrics_requested: int, cost_usd: float, seconds: float, cpu_seconds: float) -> None:
    HEALTH_CHECK_AWS_REQUESTS.labels(namespace, name, "GetMetricData").inc(get_metric_data)
    HEALTH_CHECK_AWS_REQUESTS.labels(namespace, name, "other").inc(other_requests)
    HEALTH_CHECK_METRICS_REQUESTED.labels(namespace, name).inc(metrics_requested)
    HEALTH_CHECK_COST.labels(namespace, name).inc(cost_usd)
    HEALTH_CHECK_DURATION.observe(seconds)
    HEALTH_CHECK_CPU.observe(cpu_seconds)


def forget_health(namespace: str, name: str) -> None:
    """Drop every series of a deleted HealthCheck."""
    with _health_lock:
        stale = _health_series.pop((namespace, name), set())
    _remove(stale)
    for counter, labels in ((HEALTH_CHECK_METRICS_REQUESTED, (namespace, name)),
                            (HEALTH_CHECK_COST, (namespace, name)),
                            (HEALTH_CHECK_AWS_REQUESTS, (namespace, name, "GetMetricData")),
                            (HEALTH_CHECK_AWS_REQUESTS, (namespace, name, "other"))):
        try:
            counter.remove(*labels)
        except KeyError:
            continue


def _remove(series: Iterable[tuple[Gauge, tuple[str, ...]]]) -> None:
    for gauge, labels in series:
        try:
            gauge.remove(*labels)
        except KeyError:
            continue


def serve_metrics(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Expose /metrics (the default registry) on a background thread; port 0 picks a free port.

    Returns the server: its ``server_port`` is the port it listens on, ``shutdown()`` stops it.
    """
    server, _ = start_http_server(port, addr=addr)
    return server
