"""HealthCheck controller: parse the spec, check on a schedule and on demand, write status, report, gauges.

Thin by design: what to judge and how lives in `devops_operator.ops.health` (`check_resources` reads AWS;
the rest is pure), this module decides when, and writes what came out.

- kopf's create/update/resume handlers parse the spec: an invalid one is Stalled at once (the message
  names the field), a valid one is handed to `HealthCheckScheduler`.
- `HealthCheckScheduler` decides when: each HealthCheck's check every `spec.interval` (not while
  `spec.suspend`), and at once when the `devops.fractary.io/requested-at` annotation takes a new value
  (seen by an event handler: kopf leaves annotations under its own prefix out of what it diffs). The
  checks run as work items of the operator's one scheduler (`controllers/wakeups.py`): in its bounded
  worker pool, round-robin across namespaces, never two of one object at once.
  No kopf timer or daemon: those would put a finalizer on every HealthCheck, and nothing needs cleaning
  up at deletion that an event handler cannot do (in-memory schedule, gauges; the report ConfigMap is
  owned by the HealthCheck and garbage-collected with it). A deletion while the operator is down leaves
  nothing behind either: all of that state lives in the process.
- A check: the project reference (`projectrefs.resolve_project`; a quiet wait or Stalled), the targets
  (explicit, tag selector, or a deployment's registry: a missing registry is a quiet wait), problems no
  call could fix (Stalled, nothing called), `check_resources`, then the report ConfigMap (JSON and
  Markdown, through the store), the status (`apply_outcome`), gauges, an Event on a verdict transition,
  and every function in `POST_CHECK_HOOKS`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator import metrics
from devops_operator.api.common import (
    API_GROUP,
    API_VERSION,
    MAX_STATUS_MESSAGE,
    REQUESTED_AT_ANNOTATION,
    ErrorCategory,
    bounded,
)
from devops_operator.api.healthcheck import KIND, HealthCheckSpec, TargetsSummary, Verdict, parse_rfc3339
from devops_operator.aws.errors import AwsConfigurationError, classify
from devops_operator.controllers.status import Outcome, apply_outcome, retry_delay, write_outcome
from devops_operator.controllers.wakeups import DEFAULT, Wakeups
from devops_operator.durations import parse_duration
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import get_condition, rfc3339
from devops_operator.kube.events import post_event, truncate
from devops_operator.kube.redaction import redact
from devops_operator.kube.store import ConfigMapDocument
from devops_operator.ops.health import discovery, report
from devops_operator.ops.health.calls import CallCounter
from devops_operator.ops.health.evaluate import SEVERITY
from devops_operator.ops.health.registry import required_permissions
from devops_operator.ops.health.service import (
    CheckResult,
    CheckSettings,
    CheckSpecError,
    check_resources,
    settings_problems,
)
from devops_operator.ops.health.targets import Target, arn_problems, from_spec
from devops_operator.projectrefs import ProjectRefError, resolve_project
from devops_operator.projects import field_path
from devops_operator.runtime import Runtime

logger = logging.getLogger(__name__)

CHECKED = "Checked"
INVALID_SPEC = "InvalidSpec"
CHECK_FAILED = "CheckFailed"
HEALTHY_CONDITION = "Healthy"
SLO_CONDITION = "SLOBurnRate"
TARGETS_CONDITION = "TargetsFound"
VERDICT_EVENT = "VerdictChanged"
MAX_EVENT_RESOURCES = 10
PostCheckHook = Callable[[Mapping[str, Any], CheckResult], None]

POST_CHECK_HOOKS: list[PostCheckHook] = []
"""Called after every completed check with the HealthCheck object (as read before the check) and the
result; a failing hook is logged and does not fail the check (the remediation policy registers here)."""


# --- the spec -----------------------------------------------------------------------------------------


def parse_spec(raw: Mapping[str, Any]) -> tuple[HealthCheckSpec | None, list[str]]:
    """The spec, or the problems with it, each naming the field (spec.targets.resources[0].type: ...)."""
    try:
        spec = HealthCheckSpec.model_validate(dict(raw))
    except ValidationError as exc:
        return None, [f"{field_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
    problems = [f"{where}: {message}" for where, message in arn_problems(spec.targets.resources)]
    if not problems:
        explicit = explicit_targets(spec)
        problems = [str(p) for p in settings_problems(explicit, CheckSettings.from_spec(spec), datetime.now(UTC))]
    return (None, problems) if problems else (spec, [])


def explicit_targets(spec: HealthCheckSpec) -> list[Target]:
    return [from_spec(resource, index) for index, resource in enumerate(spec.targets.resources)]


def interval_seconds(spec: HealthCheckSpec) -> float:
    return max(parse_duration(spec.interval).total_seconds(), 1.0)


# --- outcomes (pure) ------------------------------------------------------------------------------------

_VERDICT_CONDITIONS = {
    Verdict.HEALTHY: ("True", "Healthy"),
    Verdict.DEGRADED: ("False", "Degraded"),
    Verdict.UNHEALTHY: ("False", "Unhealthy"),
    Verdict.NO_DATA: ("Unknown", "NoData"),
}


def summary(stored: Mapping[str, Any]) -> str:
    """`UNHEALTHY: api UNHEALTHY (ErrorRate 12 % > critical 5 %); ghost NOT_FOUND (spec...)` and counts."""
    resources = stored.get("resources") or []
    bad = [r for r in resources if r.get("verdict") not in (Verdict.HEALTHY, None)]
    parts = []
    for resource in bad[:5]:
        reason = (resource.get("reasons") or [""])[0]
        if resource.get("verdict") == Verdict.NOT_FOUND and resource.get("source"):
            reason = f"does not exist in AWS ({resource['source']})"
        parts.append(f"{resource.get('name')} {resource.get('verdict')} ({reason})")
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    counts = stored.get("counts") or {}
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    head = f"{stored.get('verdict')}: {len(resources)} resource(s)" + (f" ({tally})" if tally else "")
    return head + (": " + "; ".join(parts) + more if parts else "")


def check_conditions(stored: Mapping[str, Any]) -> tuple[tuple[str, str, str, str], ...]:
    verdict = Verdict(stored["verdict"])
    resources = stored.get("resources") or []
    not_found = [r for r in resources if r.get("verdict") == Verdict.NOT_FOUND]
    health = (HEALTHY_CONDITION, *_VERDICT_CONDITIONS.get(verdict, ("False", "Unhealthy")), summary(stored))
    if not_found:
        listed = "; ".join(f"{r.get('type')} {r.get('id')} ({r.get('source') or r.get('name')})"
                           for r in not_found[:10])
        found = (TARGETS_CONDITION, "False", "TargetNotFound",
                 f"{len(not_found)} target(s) do not exist in AWS and were not read: {listed}")
    else:
        found = (TARGETS_CONDITION, "True", "AllFound", f"all {len(resources)} target(s) exist")
    slos = stored.get("slos") or []
    pages = [s["name"] for s in slos if s.get("alert") == "page"]
    tickets = [s["name"] for s in slos if s.get("alert") == "ticket"]
    if pages:
        burn = (SLO_CONDITION, "True", "FastBurn", f"1h and 5m burn rates at 14.4x or more: {', '.join(pages)}"
                + (f"; 6h and 30m at 6x or more: {', '.join(tickets)}" if tickets else ""))
    elif tickets:
        burn = (SLO_CONDITION, "True", "SlowBurn", f"6h and 30m burn rates at 6x or more: {', '.join(tickets)}")
    elif slos:
        burn = (SLO_CONDITION, "False", "WithinBudget", f"no SLO burns its error budget fast: "
                f"{', '.join(s['name'] for s in slos)}")
    else:
        burn = (SLO_CONDITION, "False", "NoObjectives", "no SLOs in spec.slos")
    return (health, found, burn)


def verdict_event(before: str | None, stored: Mapping[str, Any],
                  previous_resources: Mapping[str, str]) -> tuple[str, str, str] | None:
    """The Event of a verdict transition (overall, or of any resource), or None when nothing changed."""
    after = str(stored["verdict"])
    changed = [r for r in stored.get("resources") or [] if previous_resources.get(r["name"]) != r["verdict"]]
    if before == after and not changed:
        return None
    lines = [f"{r['name']} {previous_resources.get(r['name'], 'new')} -> {r['verdict']}"
             + (f" ({r['reasons'][0]})" if r.get("reasons") else "") for r in changed[:MAX_EVENT_RESOURCES]]
    more = f"; and {len(changed) - MAX_EVENT_RESOURCES} more" if len(changed) > MAX_EVENT_RESOURCES else ""
    kind = "Warning" if SEVERITY[Verdict(after)] >= SEVERITY[Verdict.DEGRADED] else "Normal"
    head = f"{before or 'none'} -> {after}" if before != after else f"still {after}"
    return kind, VERDICT_EVENT, f"{head}: " + "; ".join(lines) + more


def already_says(obj: Mapping[str, Any], outcome: Outcome) -> bool:
    """Whether the object's status already carries this outcome (so a recheck writes nothing)."""
    status = obj.get("status") or {}
    ready = get_condition(status.get("conditions"), "Ready") or {}
    stalled = get_condition(status.get("conditions"), "Stalled")
    return (status.get("observedGeneration") == obj["metadata"].get("generation")
            and ready.get("reason") == outcome.reason
            and ready.get("message") == truncate(redact(outcome.message), MAX_STATUS_MESSAGE)
            and (stalled is not None) == (outcome.state == "stalled"))


def targets_summary(source: str, resolved: int, skipped: Counter[str]) -> TargetsSummary:
    types, truncated = bounded(TargetsSummary, "skipped_types", [t for t, _ in skipped.most_common()])
    return TargetsSummary(source=source, resolved=resolved, skipped=sum(skipped.values()),
                          skipped_types=types, skipped_types_truncated=truncated)


# --- scheduling -------------------------------------------------------------------------------------------


@dataclass
class Schedule:
    """When one HealthCheck is checked next (monotonic seconds), and what asks for it."""

    generation: int | None
    interval: float
    suspended: bool
    due: float
    requested: str | None = None  # a requested-at value not handled yet
    handled: str | None = None  # the last one handled (an event seen late must not ask again)
    running: bool = False
    failures: int = 0


def is_due(entry: Schedule, now: float) -> bool:
    """Whether to start a check now (pure)."""
    if entry.running:
        return False
    return entry.requested is not None or (not entry.suspended and now >= entry.due)


def first_due(status: Mapping[str, Any], generation: int | None, interval: float, *, now_wall: datetime,
              now: float) -> float:
    """When a (re)registered HealthCheck is due: at once, unless this generation was checked recently."""
    last = status.get("lastCheck")
    if not last or status.get("observedGeneration") != generation:
        return now
    try:
        elapsed = (now_wall - parse_rfc3339(str(last))).total_seconds()
    except ValueError:
        return now
    return now + max(0.0, interval - elapsed)


class HealthCheckScheduler:
    """When each HealthCheck is checked; the checks run as work items of the operator's one scheduler
    (`controllers/wakeups.py`: its bounded worker pool, round-robin across namespaces, never two checks of
    one object at once). See the module docstring."""

    def __init__(self, runtime: Runtime, wakeups: Wakeups | None = None) -> None:
        self.runtime = runtime
        self.wakeups = wakeups or Wakeups()
        self.clock = self.wakeups.clock
        self._lock = threading.Lock()
        self._entries: dict[str, Schedule] = {}
        self.wakeups.register(KIND.kind, lambda namespace, name: self.wake(_key(namespace, name)))

    def _wake_at(self, key: str, at: float) -> None:
        namespace, _, name = key.partition("/")
        if math.isfinite(at):
            self.wakeups.schedule(KIND.kind, namespace, name, at)
        else:
            self.wakeups.cancel(KIND.kind, namespace, name, DEFAULT)

    def register(self, key: str, generation: int | None, spec: HealthCheckSpec, status: Mapping[str, Any],
                 requested: str | None) -> None:
        now = self.clock()
        interval = interval_seconds(spec)
        with self._lock:
            known = self._entries.get(key)
            if known is not None and known.generation == generation:
                known.interval, known.suspended = interval, spec.suspend
                if requested is not None and requested != known.handled:
                    known.requested = requested
                    self._wake_at(key, now)
                return
            due = first_due(status, generation, interval, now_wall=datetime.now(UTC), now=now)
            self._entries[key] = Schedule(generation, interval, spec.suspend, due, requested=requested,
                                          handled=known.handled if known else None,
                                          running=known.running if known else False)
        self._wake_at(key, now if requested is not None else due)

    def request(self, key: str, value: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or value == entry.handled:
                return
            entry.requested = value
        self._wake_at(key, self.clock())

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
        namespace, _, name = key.partition("/")
        self.wakeups.cancel(KIND.kind, namespace, name)

    def wake(self, key: str) -> None:
        """The scheduler's call at a HealthCheck's moment: check it if it is still due (a suspend, a newer
        moment or a forget may have come since)."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not is_due(entry, now):
                if entry is not None and not entry.running and not entry.suspended and entry.due > now:
                    self._wake_at(key, entry.due)
                return
            entry.running = True
        self.check(key)

    def _finished(self, key: str, generation: int | None, delay: float | None, handled: str | None,
                  failed: bool) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.running = False
            if entry.generation != generation:
                entry.due = self.clock()  # the spec changed during the check: check the new one now
            else:
                if handled is not None:
                    entry.handled = handled
                    if entry.requested == handled:
                        entry.requested = None
                entry.failures = entry.failures + 1 if failed else 0
                entry.due = self.clock() + (delay if delay is not None else math.inf)
            at = self.clock() if entry.requested is not None else entry.due
        self._wake_at(key, at)

    def _generation(self, key: str) -> int | None:
        with self._lock:
            entry = self._entries.get(key)
            return entry.generation if entry else None

    def _failures(self, key: str) -> int:
        with self._lock:
            entry = self._entries.get(key)
            return entry.failures if entry else 0

    # -- one check ----------------------------------------------------------------------------------------

    def check(self, key: str) -> None:
        """Run one check of one HealthCheck and write what came out (never raises)."""
        generation, delay, handled, failed = self._generation(key), None, None, False
        try:
            generation, delay, handled, failed = self._check(key)
        except Exception as exc:  # one HealthCheck's failure must not stop the others'
            logger.warning("check of HealthCheck %s failed: %s", key, redact(f"{type(exc).__name__}: {exc}"))
            failed = True
            config = self.runtime.config
            delay = retry_delay(self._failures(key), base=config.retry_base_seconds, cap=config.retry_cap_seconds)
        finally:
            self._finished(key, generation, delay, handled, failed)

    def _read(self, key: str) -> dict[str, Any] | None:
        namespace, _, name = key.partition("/")
        try:
            obj = CustomObjectsApi(self.runtime.kube).get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, KIND.plural, name, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                self.forget(key)
                return None
            raise
        assert isinstance(obj, dict)
        return obj

    def _check(self, key: str) -> tuple[int | None, float | None, str | None, bool]:
        """(generation checked, seconds until the next check or None to wait for a change, request handled,
        failed)."""
        obj = self._read(key)
        if obj is None:
            return None, None, None, False
        metadata = obj["metadata"]
        generation = metadata.get("generation")
        if generation != self._generation(key):
            # kopf's handler has not seen this spec yet: it registers it (and wakes it); look again shortly.
            return self._generation(key), 0.5, None, False
        requested = (metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
        handled = requested if requested != (obj.get("status") or {}).get("lastHandledRequest") else None
        spec, problems = parse_spec(obj.get("spec") or {})
        config = self.runtime.config
        if spec is None:
            self._write(obj, Outcome.stalled(INVALID_SPEC, "; ".join(problems)), handled, "stalled")
            return generation, None, handled, False
        recheck = min(config.stalled_recheck_seconds, interval_seconds(spec))
        outcome, result, delay = self._run(obj, spec, handled)
        if result is None:
            assert outcome is not None
            if outcome.state == "stalled":
                self._write(obj, outcome, handled, "stalled")
                return generation, recheck, handled, False
            self._write(obj, outcome, handled, "waiting" if delay is None else "failed")
            # Waiting (a project being verified, a registry being written) is often over in a second:
            # look again soon, then less and less often, up to the stalled recheck interval.
            wait = delay if delay is not None else retry_delay(self._failures(key), base=1.0, cap=recheck)
            return generation, wait, handled, True
        return generation, interval_seconds(spec), handled, False

    def _write(self, obj: Mapping[str, Any], outcome: Outcome, handled: str | None, label: str) -> None:
        """Write an outcome that is not a check result; nothing when the status already says exactly that."""
        metrics.HEALTH_CHECKS.labels(label).inc()
        if handled is None and already_says(obj, outcome):
            return
        fields = dict(outcome.fields)
        if handled is not None:
            fields["lastHandledRequest"] = handled
        outcome = Outcome(outcome.state, outcome.reason, outcome.message, outcome.phase, fields,
                          outcome.domain_conditions)
        if self._current(obj):
            apply_outcome(self.runtime.kube, KIND, obj, outcome)

    def _current(self, obj: Mapping[str, Any]) -> bool:
        """Whether the schedule still holds the generation checked (a newer spec or a deletion wins)."""
        metadata = obj["metadata"]
        key = _key(metadata.get("namespace"), metadata["name"])
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.generation == metadata.get("generation")

    def _run(self, obj: Mapping[str, Any], spec: HealthCheckSpec,
             handled: str | None) -> tuple[Outcome | None, CheckResult | None, float | None]:
        """(outcome when no check result, the result, retry delay for failures)."""
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        config = self.runtime.config
        try:
            access = resolve_project(self.runtime, namespace, spec.project_ref, spec.environment)
        except ProjectRefError as exc:
            text = str(exc)
            if not exc.stalled:
                return Outcome.reconciling(exc.reason, text, "Pending"), None, None
            return Outcome.stalled(exc.reason, text), None, None  # looked at again every stalled recheck
        calls = CallCounter()
        try:
            targets, source, skipped = self._targets(namespace, spec, access, calls)
        except discovery.RegistryWaiting as exc:
            condition = (TARGETS_CONDITION, "False", "RegistryNotFound", str(exc))
            return Outcome.reconciling("RegistryNotFound", str(exc), "Pending", conditions=(condition,)), None, None
        settings = CheckSettings.from_spec(spec)
        try:
            result = check_resources(self.runtime, access, targets, settings, calls=calls)
        except CheckSpecError as exc:
            return Outcome.stalled(INVALID_SPEC, str(exc)), None, None
        except (ClientError, BotoCoreError, AwsConfigurationError) as exc:
            failure = classify(exc)
            message = f"{failure.summary}: {failure.fix}" if failure.fix else failure.summary
            if failure.category is ErrorCategory.PERMISSION:
                needed = ", ".join(required_permissions(targets, spec.targets.tag_selector is not None))
                return Outcome.stalled("AccessDenied", f"{message}; a check of these targets needs: {needed}"), \
                    None, None
            delay = retry_delay(self._failures(f"{namespace}/{name}"), base=config.retry_base_seconds,
                                cap=config.retry_cap_seconds)
            return Outcome.reconciling(CHECK_FAILED, message, "Pending"), None, delay
        self._publish(obj, spec, result, handled, targets_summary(source, len(targets), skipped))
        return None, result, None

    def _targets(self, namespace: str, spec: HealthCheckSpec, access: Any,
                 calls: CallCounter) -> tuple[list[Target], str, Counter[str]]:
        chosen = spec.targets
        if chosen.deployment_ref is not None:
            found = discovery.deployment_targets(self.runtime.kube, namespace, chosen.deployment_ref)
            return found.targets, "deploymentRef", found.skipped
        if chosen.tag_selector is not None:
            client = self.runtime.aws.client(access.key, access.environment.name, "resourcegroupstaggingapi")
            tagged = discovery.tagged_targets(client, chosen.tag_selector, calls)
            return tagged.targets, "tagSelector", tagged.skipped
        return explicit_targets(spec), "resources", Counter()

    def _publish(self, obj: Mapping[str, Any], spec: HealthCheckSpec, result: CheckResult, handled: str | None,
                 targets: TargetsSummary) -> None:
        """Report ConfigMap, status, gauges, cost metrics, Event, hooks: everything a check's result feeds."""
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        at = rfc3339()
        status = obj.get("status") or {}
        store = ConfigMapDocument(self.runtime.kube, namespace, report.report_name(name), report.REPORT_JSON,
                                  owner=obj, render=report.render_markdown)
        before: dict[str, Any] = {}

        def next_report(previous: Any) -> dict[str, Any]:
            before["report"] = previous  # the last report, with every resource (status holds 100 at most)
            return report.report_document(result, previous, healthcheck=f"{namespace}/{name}", at=at,
                                          targets=targets.to_wire())

        stored = store.update(next_report, rotate=report.shrink)
        next_check = None if spec.suspend else rfc3339(datetime.now(UTC) + timedelta(seconds=interval_seconds(spec)))
        fields = report.status_fields(stored, status.get("history") or [], spec.history_limit, targets,
                                      store.name, next_check)
        if handled is not None:
            fields["lastHandledRequest"] = handled
        outcome = Outcome.ready(CHECKED, summary(stored), fields, check_conditions(stored))
        if not self._current(obj):
            return
        # Gauges first: whoever sees the new status must also see the gauges it describes.
        metrics.HEALTH_CHECKS.labels("checked").inc()
        metrics.record_health(
            namespace, name, str(result.verdict),
            [metrics.ResourceGauge(r.target.name, str(r.target.type), str(r.verdict.verdict),
                                   {m.name: m.value for m in r.verdict.metrics if m.value is not None})
             for r in result.resources],
            [metrics.SloGauge(o.spec.name, o.result.sli, o.result.error_budget_remaining, o.result.burn_rates)
             for o in result.slos],
        )
        metrics.record_health_check_cost(
            namespace, name, get_metric_data=result.fetch.requests, other_requests=result.calls.total,
            metrics_requested=result.fetch.metrics_requested, cost_usd=result.fetch.estimated_cost_usd,
            seconds=result.duration_seconds, cpu_seconds=result.cpu_seconds,
        )
        apply_outcome(self.runtime.kube, KIND, obj, outcome)
        last = before.get("report")
        previous = {str(r.get("name")): str(r.get("verdict")) for r in
                    (last.get("resources") or [] if isinstance(last, dict) else []) if isinstance(r, dict)}
        event = verdict_event(status.get("verdict"), stored, previous)
        if event is not None:
            kind, reason, message = event
            post_event(self.runtime.kube, {"apiVersion": KIND.api_version, "kind": KIND.kind, "metadata": metadata},
                       "Warning" if kind == "Warning" else "Normal", reason, message)
        for hook in list(POST_CHECK_HOOKS):
            try:
                hook(obj, result)
            except Exception as exc:  # a hook's failure is its own; the check is done
                logger.warning("post-check hook %s failed for %s/%s: %s", getattr(hook, "__name__", hook),
                               namespace, name, redact(str(exc)))


# --- kopf handlers ----------------------------------------------------------------------------------------


def _key(namespace: str | None, name: str) -> str:
    return f"{namespace or ''}/{name}"


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
def reconcile_healthcheck(name: str, namespace: str | None, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo,
                          **_: Any) -> None:
    """Parse the spec; Stalled when it cannot work, else hand it to the scheduler."""
    scheduler: HealthCheckScheduler | None = memo.get("health_scheduler")
    key = _key(namespace, name)
    with metrics.reconcile_timer(KIND.kind) as result:
        spec, problems = parse_spec(dict(body.get("spec") or {}))
        status = dict(body.get("status") or {})
        generation = body.metadata.get("generation")
        if spec is None:
            if scheduler is not None:
                scheduler.forget(key)
            write_outcome(KIND.kind, body, patch, Outcome.stalled(INVALID_SPEC, "; ".join(problems)))
            result["value"] = metrics.Outcome.STALLED
            return
        requested = (body.metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
        pending = requested if requested and requested != status.get("lastHandledRequest") else None
        if scheduler is not None:
            scheduler.register(key, generation, spec, status, pending)
        # The scheduler writes every check's outcome; writing here too could land after it and hide it. A
        # suspended spec is the exception: nothing else writes until a check is requested.
        if spec.suspend and pending is None and status.get("observedGeneration") != generation:
            message = (f"periodic checks are suspended (spec.suspend): set the {REQUESTED_AT_ANNOTATION} "
                       "annotation to check now")
            write_outcome(KIND.kind, body, patch, Outcome.ready("Suspended", message))


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural)
def healthcheck_event(name: str, namespace: str | None, body: kopf.Body, type: str | None, memo: kopf.Memo,
                      **_: Any) -> None:
    """A requested-at annotation asks for a check now; a deletion drops schedule and gauges (no finalizer)."""
    scheduler: HealthCheckScheduler | None = memo.get("health_scheduler")
    key = _key(namespace, name)
    if type == "DELETED":
        if scheduler is not None:
            scheduler.forget(key)
        metrics.forget_health(namespace or "", name)
        metrics.forget_resource(KIND.kind, namespace or "", name)
        return
    requested = (body.metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
    handled = (body.get("status") or {}).get("lastHandledRequest")
    if scheduler is not None and requested and requested != handled:
        scheduler.request(key, requested)
