"""Probable root cause: the error patterns matched against a table of known causes, kept as data.

Every pattern is attributed to the first cause in `KNOWN_CAUSES` whose expressions match its example line
(specific causes come before generic ones, so nothing is counted twice). The cause with the most events
wins; its confidence comes from two independent kinds of evidence:

- share: the fraction of matching events it explains (at least half for medium and high);
- corroboration: a metric anomaly of a metric the cause names (or of an error metric) overlapping the
  time its patterns were seen.

high: share >= 0.5 and corroborated; medium: share >= 0.5, or share >= 0.2 and corroborated; low: any
other match. A deployment applied shortly before the first error is evidence (and a recommendation) too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from devops_operator.api.actions import spec_of
from devops_operator.api.common import ResourceType
from devops_operator.api.investigation import Confidence
from devops_operator.kube.conditions import rfc3339
from devops_operator.ops.investigation.anomalies import Anomaly
from devops_operator.ops.investigation.patterns import Pattern

# Error metrics corroborate any cause: they say the errors in the logs are errors users saw.
ERROR_METRICS = frozenset({"Errors", "5XXError", "5xx", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"})
CORROBORATION_SLACK = timedelta(minutes=5)
DEPLOYMENT_LOOKBACK = timedelta(minutes=30)
MAX_RECOMMENDATIONS = 20


@dataclass(frozen=True)
class KnownCause:
    id: str
    summary: str
    expressions: tuple[str, ...]  # regular expressions, case-insensitive, searched in an example line
    metrics: tuple[str, ...] = ()  # metrics whose anomaly corroborates it
    recommendations: tuple[str, ...] = ()
    remediation: str | None = None  # the registry action that usually relieves it

    def __post_init__(self) -> None:
        if self.remediation is not None:
            spec_of(self.remediation)  # a table entry naming an action the registry lacks fails at import

    def matches(self, text: str) -> bool:
        return bool(_COMPILED[self.id].search(text))


KNOWN_CAUSES: tuple[KnownCause, ...] = (
    KnownCause(
        "connection-exhaustion",
        "Database connections exhausted: the database refuses or queues new connections",
        (r"too many (connections|clients)", r"remaining connection slots", r"max_connections",
         r"connection pool\W.{0,30}(exhausted|full|timeout)", r"pool (is )?exhausted", r"QueuePool limit",
         r"could not obtain (a )?connection", r"cannot get a connection",
         r"timeout waiting for (idle object|connection)",
         r"ConnectionPoolTimeout", r"Connection is not available, request timed out"),
        metrics=("DatabaseConnections",),
        recommendations=(
            "Restart the service to release leaked connections (a Remediation with action restart).",
            "Bound each instance's pool so pool size x concurrency stays below the database's max_connections, "
            "or put RDS Proxy in front of the database.",
            "Compare the instance's DatabaseConnections metric with max_connections for its class.",
        ),
        remediation="restart",
    ),
    KnownCause(
        "database-timeout",
        "Timeouts connecting to the database: it is unreachable, overloaded or out of connections",
        (r"(database|\bdb\b|sql|postgres|mysql|aurora|rds|jdbc|mongo|redis)\W.{0,40}(timeout|timed out)",
         r"(timeout|timed out)\W.{0,40}(database|\bdb\b|postgres|mysql|aurora|jdbc)"),
        metrics=("DatabaseConnections", "CPUUtilization", "ReadLatency", "WriteLatency", "Duration"),
        recommendations=(
            "Restart the service: fresh execution environments drop stale or leaked database connections "
            "(a Remediation with action restart).",
            "Check the database's DatabaseConnections, CPUUtilization and latency metrics for saturation.",
            "Check that the service can still reach the database (security groups, subnets, DNS) and that its "
            "connection timeout is longer than the database's normal response time.",
            "Use a bounded connection pool or RDS Proxy so bursts of invocations do not open a connection each.",
        ),
        remediation="restart",
    ),
    KnownCause(
        "deadlock",
        "Database deadlocks between concurrent transactions",
        (r"deadlock detected", r"Deadlock found when trying to get lock", r"\bdeadlock\b"),
        recommendations=(
            "Take locks in the same order in every transaction and keep transactions short.",
            "Retry a transaction that failed with a deadlock (it is safe: the database rolled it back).",
        ),
    ),
    KnownCause(
        "broken-package",
        "The deployed code cannot load: a module, class or handler is missing from the package",
        (r"ImportModuleError", r"No module named", r"Cannot find module", r"ClassNotFoundException",
         r"HandlerNotFound", r"NoClassDefFoundError"),
        recommendations=(
            "Roll back to the version that ran before (a Remediation with action rollback), then fix the build "
            "that left the dependency out.",
        ),
        remediation="rollback",
    ),
    KnownCause(
        "throttling",
        "Requests throttled: a rate limit or concurrency limit is reached",
        (r"Throttl", r"Rate exceeded", r"TooManyRequests", r"SlowDown", r"ProvisionedThroughputExceeded",
         r"RequestLimitExceeded", r"\b429\b", r"TooManyRequestsException"),
        metrics=("Throttles", "ThrottledRequests", "ReadThrottleEvents", "WriteThrottleEvents"),
        recommendations=(
            "Raise the limit that throttles: the function's reserved concurrency (a Remediation with action "
            "scale) or the service quota.",
            "Retry throttled calls with exponential backoff and jitter.",
        ),
        remediation="scale",
    ),
    KnownCause(
        "out-of-memory",
        "Out of memory: processes are killed or fail to allocate",
        (r"OutOfMemory", r"out of memory", r"Java heap space", r"MemoryError", r"OOMKilled",
         r"Cannot allocate memory", r"heap out of memory", r"signal: killed", r"exit code 137",
         r"Runtime exited with error: signal: killed"),
        metrics=("MemoryUtilization", "FreeableMemory", "MaxMemoryUsed"),
        recommendations=(
            "Raise the memory of the function or task, and look for a leak in the memory trend.",
            "Restart to recover now (a Remediation with action restart) while the cause is fixed.",
        ),
        remediation="restart",
    ),
    KnownCause(
        "function-timeout",
        "The function runs longer than its configured timeout",
        (r"Task timed out after",),
        metrics=("Duration",),
        recommendations=(
            "Find the slow call in the traces or logs just before the timeout; raise the function's timeout only "
            "if the work is legitimately long.",
        ),
    ),
    KnownCause(
        "permission-denied",
        "Permission denied: the service's identity lacks an IAM permission",
        (r"AccessDenied", r"not authorized to perform", r"Permission denied", r"\bForbidden\b",
         r"UnauthorizedOperation", r"\b403\b"),
        recommendations=(
            "Grant the permission named in the message to the service's role (a PermissionRequest proposes the "
            "least-privilege statement).",
            "Check for an explicit deny in a permissions boundary, SCP or resource policy.",
        ),
    ),
    KnownCause(
        "connection-refused",
        "A dependency refuses or resets connections: it is down or not listening",
        (r"ECONNREFUSED", r"Connection refused", r"connect\(\) failed", r"ECONNRESET", r"Connection reset",
         r"broken pipe"),
        recommendations=(
            "Check that the dependency is running and listening on the port the service uses.",
            "Check recent deployments of the dependency and its health checks.",
        ),
    ),
    KnownCause(
        "dependency-timeout",
        "Timeouts calling a dependency: a downstream service or network path is slow or unreachable",
        (r"ETIMEDOUT", r"timed out", r"\btimeout\b", r"deadline exceeded", r"SocketTimeout", r"ReadTimeout",
         r"\b504\b", r"Gateway Time-?out"),
        metrics=("Duration", "Latency", "TargetResponseTime", "IntegrationLatency"),
        recommendations=(
            "Find which dependency times out (the example line names it) and check its latency and errors.",
            "Set client timeouts below the caller's own timeout, with retries and backoff.",
        ),
    ),
    KnownCause(
        "dns-failure",
        "Name resolution fails",
        (r"ENOTFOUND", r"Name or service not known", r"Temporary failure in name resolution",
         r"could not resolve host", r"UnknownHostException", r"no such host"),
        recommendations=("Check the DNS name, the VPC's DNS settings and any private hosted zones.",),
    ),
    KnownCause(
        "disk-full",
        "No space left: a disk or storage quota is full",
        (r"No space left on device", r"disk (is )?full", r"storage full", r"FreeStorageSpace"),
        metrics=("FreeStorageSpace", "EphemeralStorageUtilized"),
        recommendations=("Free or grow the storage; look for logs or temporary files that keep growing.",),
    ),
    KnownCause(
        "cold-starts",
        "Cold starts: new execution environments add start-up latency",
        (r"Init Duration", r"INIT_START", r"cold start"),
        metrics=("Duration", "InitDuration"),
        recommendations=(
            "Use provisioned concurrency for latency-sensitive functions, and trim the package and start-up work.",
        ),
    ),
    KnownCause(
        "unhandled-exception",
        "Unhandled exceptions in the service's code",
        (r"Exception", r"Traceback", r"\bpanic\b", r"Unhandled", r"Runtime\.ExitError", r"Segmentation fault",
         r"uncaught"),
        recommendations=(
            "Read the example stack trace; if the errors began with a deployment, roll it back "
            "(a Remediation with action rollback).",
        ),
        remediation="rollback",
    ),
)
_BY_ID = {cause.id: cause for cause in KNOWN_CAUSES}
_COMPILED = {cause.id: re.compile("|".join(f"(?:{e})" for e in cause.expressions), re.IGNORECASE)
             for cause in KNOWN_CAUSES}


@dataclass(frozen=True)
class Change:
    """A deployment or remediation in or before the window (for evidence)."""

    at: datetime
    kind: str  # "deployment" or "remediation"
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Service:
    """What the investigation is about, for recommendation text."""

    type: ResourceType | None = None
    id: str | None = None


@dataclass
class Diagnosis:
    cause_id: str | None
    summary: str
    confidence: Confidence
    signature: str | None
    evidence: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    share: float = 0.0
    # Every cause that explained some events, most events first: (cause id, events).
    candidates: list[tuple[str, int]] = field(default_factory=list)


def cause_of(pattern: Pattern) -> KnownCause | None:
    text = f"{pattern.example}\n{pattern.signature}"
    return next((cause for cause in KNOWN_CAUSES if cause.matches(text)), None)


def _when(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def _overlaps(anomaly: Anomaly, start: datetime, end: datetime) -> bool:
    return anomaly.start <= end + CORROBORATION_SLACK and anomaly.end >= start - CORROBORATION_SLACK


def diagnose(patterns: Sequence[Pattern], anomalies: Sequence[Anomaly], changes: Sequence[Change],
             service: Service | None = None) -> Diagnosis | None:
    """The probable cause of the patterns, or None when there are no matching events at all."""
    total = sum(p.count for p in patterns)
    if total == 0:
        return None
    by_cause: dict[str, list[Pattern]] = {}
    for pattern in patterns:
        cause = cause_of(pattern)
        by_cause.setdefault(cause.id if cause else "", []).append(pattern)
    order = {cause.id: index for index, cause in enumerate(KNOWN_CAUSES)}
    candidates = sorted(
        ((cid, sum(p.count for p in group)) for cid, group in by_cause.items() if cid),
        key=lambda item: (-item[1], order[item[0]]),
    )
    first_error = _when(min(p.first_seen for p in patterns))
    deployment = _deployment_before(changes, first_error)
    if not candidates:
        return _unrecognised(patterns, total, deployment, service)

    cause = _BY_ID[candidates[0][0]]
    group = by_cause[cause.id]
    events = candidates[0][1]
    share = events / total
    start, end = _when(min(p.first_seen for p in group)), _when(max(p.last_seen for p in group))
    wanted = set(cause.metrics) | ERROR_METRICS
    corroborating = [a for a in anomalies if a.metric in wanted and _overlaps(a, start, end)]
    if share >= 0.5 and corroborating:
        confidence = Confidence.HIGH
    elif share >= 0.5 or (share >= 0.2 and corroborating):
        confidence = Confidence.MEDIUM
    else:
        confidence = Confidence.LOW

    top = group[0]
    evidence = [
        f"{events} of {total} matching events ({share:.0%}) look like this cause; most frequent: "
        f"\"{top.signature}\" x{top.count}, first seen {rfc3339(_when(top.first_seen))}, "
        f"last seen {rfc3339(_when(top.last_seen))}",
        f"example: {top.example}",
    ]
    evidence += [f"metric anomaly from {rfc3339(a.start)} to {rfc3339(a.end)}: {a.describe()}" for a in corroborating]
    if not corroborating:
        evidence.append("no metric anomaly of the service overlaps these errors (the metrics do not confirm them)")
    if deployment is not None:
        minutes = (first_error - deployment.at).total_seconds() / 60
        evidence.append(f"{deployment.kind} {deployment.name} happened {minutes:.0f} min before the first error"
                        f"{f' ({deployment.detail})' if deployment.detail else ''}")
    for other_id, other_events in candidates[1:3]:
        evidence.append(f"also seen: {_BY_ID[other_id].summary} ({other_events} events)")

    recommendations = list(cause.recommendations)
    recommendations += _remediation_hint(cause, service)
    if deployment is not None and deployment.kind == "deployment":
        recommendations.append(
            f"The errors began after deployment {deployment.name}: review what it changed, and roll it back if it "
            "is the trigger (the registry's DEPLOYED.md has the rollback instructions)."
        )
    return Diagnosis(cause.id, cause.summary, confidence, top.signature, evidence[:20],
                     _unique(recommendations)[:MAX_RECOMMENDATIONS], share, candidates)


def _unrecognised(patterns: Sequence[Pattern], total: int, deployment: Change | None,
                  service: Service | None) -> Diagnosis:
    top = patterns[0]
    evidence = [f"no known cause matches the {total} matching events; most frequent: \"{top.signature}\" "
                f"x{top.count}", f"example: {top.example}"]
    recommendations = ["Read the most frequent pattern's example in the report, and narrow the search with "
                       "spec.filterPattern."]
    if deployment is not None:
        evidence.append(f"{deployment.kind} {deployment.name} happened shortly before the first error")
        return Diagnosis("recent-change", f"Errors that began after {deployment.kind} {deployment.name}",
                         Confidence.LOW, top.signature, evidence, recommendations, 0.0, [])
    return Diagnosis(None, f"Unrecognised errors: {top.signature}", Confidence.LOW, top.signature, evidence,
                     recommendations, 0.0, [])


def _deployment_before(changes: Sequence[Change], first_error: datetime) -> Change | None:
    before = [c for c in changes if first_error - DEPLOYMENT_LOOKBACK <= c.at <= first_error]
    return max(before, key=lambda c: c.at) if before else None


def _remediation_hint(cause: KnownCause, service: Service | None) -> list[str]:
    if cause.remediation is None or service is None or service.type is None or not service.id:
        return []
    spec = spec_of(cause.remediation)
    if spec.target(service.type) is None:
        return []
    return [f"Remediation: action {spec.name} on {service.type.value} {service.id} ({spec.description.lower()})"]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
