"""InfraDeployment controller: plan → test → approve → apply → verify → register, in runner Jobs.

Thin by design: the decisions are pure (approvals.decide, planjson, registry, checks, jobs.job_name);
this module reads what exists (the deployment, its Jobs and their result Secrets), decides the next
step, starts at most one Job for it, and writes status through `apply_outcome`.

Crash safety: Job names are deterministic per plan request (plan) and plan id (apply), and the controller
looks for the Job before creating one, so a restarted operator finds the apply it started instead of
starting another. Every path that writes status goes through one lock per deployment, so the kopf handler,
the Job watch and the background recheck never interleave their writes.

Waiting is quiet: a plan waiting for approval is an expected wait (no error, no retry loop); Jobs are
watched (their events reconcile the owner); the operator's one scheduler (`controllers/wakeups.py`) re-looks
at deployments that wait for something outside them (a project becoming Ready, a ConfigMap created later) on
a back-off, writing status only when it changed, and at every moment one asked for (approvals expiring,
drift checks, windows, retries).

Day 2 (after the first apply): drift checks on `spec.driftDetection.interval` (a detect-only plan Job);
`dependsOn` (waits, refuses cycles, re-plans on a dependency's new outputs); the environment's change
windows (an approved plan waits, with the next opening in status); `suspend` (no Job starts); annotations
for a re-plan, a drift check and a lock release now; stale locks (the Lease's holder pod is gone);
`destroyOnDelete` through a finalizer, with the abandon annotation as the escape hatch. One Job at a time:
they share the state lock, so a spec change during an apply or a drift check waits for it to finish.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator import admission, approvals, metrics
from devops_operator.api.common import API_GROUP, API_VERSION, ApprovalState, ApprovalStatus, bounded
from devops_operator.api.devopsproject import KIND as PROJECT_KIND
from devops_operator.api.infradeployment import (
    ABANDON_ANNOTATION,
    DESTROY_FINALIZER,
    DRIFT_CHECK_ANNOTATION,
    KIND,
    RELEASE_LOCK_ANNOTATION,
    REPLAN_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    ApprovalMode,
    DependenciesStatus,
    InfraDeploymentSpec,
    LockRelease,
    OutputsStatus,
    PlanStatus,
    RegistryStatus,
    WindowStatus,
)
from devops_operator.controllers.status import Outcome, apply_outcome
from devops_operator.controllers.wakeups import Wakeups, waiting_delay
from devops_operator.deploy import checks, dependencies, drift, locks, registry, results, runner_rbac, windows
from devops_operator.deploy.inputs import InputError, ResolvedInputs, resolve
from devops_operator.deploy.revisions import RevisionCache
from devops_operator.digests import short_digest
from devops_operator.durations import parse_duration
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.conditions import rfc3339
from devops_operator.kube.events import post_event
from devops_operator.kube.owners import adopt
from devops_operator.kube.redaction import redact
from devops_operator.kube.store import ConfigMapDocument, StoreError
from devops_operator.projectrefs import ProjectAccess, ProjectRefError, resolve_project
from devops_operator.runner.sources import git_target, remote_revision
from devops_operator.runtime import Runtime
from devops_operator.tenancy import git_host_allowed
from devops_operator.terraform import backends
from devops_operator.terraform.jobs import DEPLOYMENT_LABEL, JobObservation, build_job, job_name, observe
from devops_operator.terraform.planjson import Change, PlanSummary, StateResource, verify_applied
from devops_operator.terraform.request import LOG_KEY, PLAN_KEY_SECRET_KEY, RESULT_KEY, plan_key_secret, result_name

logger = logging.getLogger(__name__)

PLANNED, TESTED, APPLIED = "Planned", "Tested", "Applied"
JOB_PHASES = frozenset({"Planning", "Applying"})
IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
# Ready-condition reasons of deployments that wait for something outside them: the recheck looks again.
WAITING_REASONS = frozenset({"WaitingForProject", "SourceNotFound", "UnsafeSourceKey", "SourceArtifactMissing",
                             "LegacyStateShared", "VariablesNotFound", "GitCredentialsNotFound", "ProjectNotFound",
                             "ProjectNotReady", "PolicyDenied", "WaitingForDependencies", "ReconcileError"})
DRIFTED = "Drifted"
POLL = "poll"  # the scheduler reason of a deployment's polls (a running Job's lock, a wait's back-off)
# Failure categories of a plan worth retrying as is (spec.retry): the same inputs may well work next time.
TRANSIENT_CATEGORIES = frozenset({"throttling", "network"})


def annotate_command(namespace: str, name: str, annotation: str, value: str) -> str:
    return f"kubectl -n {namespace} annotate infradeployment {name} {annotation}={value} --overwrite"


def _annotation(obj: Mapping[str, Any], name: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return str(value) if value else None


def _window_wire(state: windows.WindowState, operation: str) -> dict[str, Any]:
    return WindowStatus(open=state.open, operation=operation, reason=state.reason,
                        next_open=rfc3339(state.next_open) if state.next_open else None,
                        closes_at=rfc3339(state.closes_at) if state.closes_at else None).to_wire()


def _combine(first: Outcome, then: Outcome) -> Outcome:
    """Two steps in one reconciliation (an apply recorded, then the next plan started): the later one decides."""
    return Outcome(then.state, then.reason, f"{first.message}; then {then.message}", then.phase,
                   {**first.fields, **then.fields}, (*first.domain_conditions, *then.domain_conditions))


def key_of(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def approve_command(namespace: str, name: str, plan_id: str) -> str:
    patch = json.dumps({"spec": {"approval": {"planId": plan_id, "approvedBy": "<you>"}}})
    return f"kubectl -n {namespace} patch infradeployment {name} --type merge -p '{patch}'"


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _failed(reason: str, message: str, fields: Mapping[str, Any] | None = None,
            conditions: tuple[tuple[str, str, str, str], ...] = ()) -> Outcome:
    return Outcome("stalled", reason, message, "Failed", fields or {}, conditions)


LOCK_ID = re.compile(r"\bID:\s*([0-9A-Za-z][0-9A-Za-z-]{7,63})")  # Terraform's "Lock Info: ID: <uuid>"
POD_DELETED = "PodDeleted"  # what _pod_state calls a pod being deleted
# Reasons whose transition Event is a Warning: the deployment goes on, but something went wrong on the way.
WARNING_REASONS = frozenset({"StalePlan", "ApplyInterrupted"})
UNREAD: Any = object()  # "the Job was not looked up yet" (None means it does not exist)


def _saved_and_released(result: Mapping[str, Any]) -> bool:
    """An apply the runner reports interrupted by a signal, whose engine saved the state (no errored.tfstate)
    and so released the lock: nothing is lost, and re-planning is safe."""
    return bool(result.get("interrupted") and not result.get("ok") and result.get("category") == "state"
                and not result.get("stale") and not result.get("erroredStateSecret"))


def _has_condition(obj: Mapping[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype for c in (obj.get("status") or {}).get("conditions") or [])


def _has_condition_reason(obj: Mapping[str, Any], ctype: str, reason: str) -> bool:
    return any(c.get("type") == ctype and c.get("reason") == reason
               for c in (obj.get("status") or {}).get("conditions") or [])


def _job_running(status: Mapping[str, Any], step: str) -> bool:
    jobs = status.get("jobs") or {}
    return bool(jobs.get("current")) and jobs.get("step") == step


class DeploymentController:
    """Reconciles InfraDeployments; one instance per operator, shared by handlers and the recheck task."""

    def __init__(self, runtime: Runtime, wakeups: Wakeups | None = None) -> None:
        self.runtime = runtime
        self.api = runtime.kube
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # Deployments waiting for something outside them: (the reason, how many looks in a row found it), for
        # the back-off of the next look (a POLL moment in the scheduler).
        self.waits: dict[str, tuple[str, int]] = {}
        self.pending_approvals: dict[str, datetime] = {}  # key -> requested at
        # Every moment to look again goes through the operator's one scheduler, which calls reconcile then:
        # an approval expiring, the next drift check, a window opening, a retry, a woken dependent (DEFAULT
        # moments), and the polls (POLL: a running Job's lock holder every tick, a waiting deployment on a
        # back-off). A Job's own changes arrive as events.
        self.wakeups = wakeups or Wakeups()
        self.wakeups.register(KIND.kind, self.reconcile)
        self.wakeups.every(1.0, self._update_pending_gauge)
        self.dependents: dict[str, set[str]] = {}  # dependency key -> deployments whose dependsOn names it
        self.by_project: dict[str, set[str]] = {}  # project key -> its deployments (woken when it changes)
        self.deleting_seen: dict[str, str] = {}  # key -> what a deleting object looked like when last handled
        self.revisions = RevisionCache()
        # Deployments that wait for a human: they look again when the approval policies' state changes.
        self.awaiting_human: set[str] = set()
        runtime.approval_policies.on_change(self._approval_policies_changed)

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        key = key_of(namespace, name)
        self.waits.pop(key, None)
        self.pending_approvals.pop(key, None)
        self.awaiting_human.discard(key)
        self.wakeups.cancel(KIND.kind, namespace, name)
        self.deleting_seen.pop(key, None)
        for keys in (*self.dependents.values(), *self.by_project.values()):
            keys.discard(key)
        metrics.forget_resource(KIND.kind, namespace, name)
        for action in ("add", "change", "destroy", "replace"):
            try:
                metrics.TERRAFORM_PLANNED_RESOURCES.remove(namespace, name, action)
            except KeyError:
                continue

    # -- reading ------------------------------------------------------------------------------------

    def _get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = CustomObjectsApi(self.api).get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, KIND.plural, name, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        assert isinstance(obj, dict)
        return obj

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = call_json(self.api, "GET", path, timeout=REQUEST_TIMEOUT)
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")

    def _result(self, namespace: str, job: str) -> dict[str, Any] | None:
        """What the runner reported, from its result Secret (a Secret: the log and error show plan values)."""
        found = self._get(f"/api/v1/namespaces/{namespace}/secrets/{result_name(job)}")
        raw = ((found or {}).get("data") or {}).get(RESULT_KEY)
        return json.loads(base64.b64decode(raw)) if raw else None

    def _pod_state(self, namespace: str, job: str) -> tuple[str | None, int | None, str | None]:
        """(reason, exit code, pod name) of the Job's runner container, as its pod reports it; the reason is
        POD_DELETED for a pod being deleted (kubectl delete pod, a drain, an eviction)."""
        listing = call_json(self.api, "GET", f"/api/v1/namespaces/{namespace}/pods",
                            query={"labelSelector": f"job-name={job}"}, timeout=REQUEST_TIMEOUT) or {}
        for pod in listing.get("items") or []:
            name = pod["metadata"]["name"]
            deleted = bool(pod["metadata"].get("deletionTimestamp"))
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                state = status.get("state") or {}
                if "terminated" in state:
                    term = state["terminated"]
                    return (POD_DELETED if deleted else term.get("reason")), term.get("exitCode"), name
                if deleted:
                    return POD_DELETED, None, name
                if "waiting" in state:
                    return state["waiting"].get("reason"), None, name
            return (POD_DELETED if deleted else None), None, name
        return None, None, None

    # -- the entry point ------------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        key = key_of(namespace, name)
        with self._lock(key), metrics.reconcile_timer(KIND.kind) as result:
            obj = self._get_deployment(namespace, name)
            if obj is None:
                self.forget(namespace, name)
                return
            try:
                obj = self._sync_finalizer(obj)
                outcome = self.evaluate(obj)
                outcome = self._replan_now(obj, outcome)
            except ApiException as exc:
                outcome = Outcome.reconciling("ReconcileError", f"the Kubernetes API answered {exc.status} "
                                              f"{exc.reason}; retrying", "Pending")
            except (StoreError, InputError) as exc:  # e.g. the registry could not be written: nothing half-done
                outcome = Outcome.reconciling("ReconcileError", f"{exc}; retrying", "Pending")
            if outcome.reason == "Released":  # the finalizer is gone, and so is the object: no status to write
                self.forget(namespace, name)
                return
            # Gauges before the status that describes them: whoever reads the status finds them current.
            self._record_gauges(obj, outcome)
            try:
                # Still waiting for the same thing: the status says so already (no write, no churn).
                apply_outcome(self.api, KIND, obj, outcome, only_if_changed=outcome.reason in WAITING_REASONS,
                              warning_reasons=WARNING_REASONS)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.forget(namespace, name)
                return
            self._wake_dependents(key, obj, outcome)
            result["value"] = (metrics.Outcome.STALLED if outcome.state == "stalled" else
                               metrics.Outcome.SUCCESS if outcome.state == "ready" else metrics.Outcome.RETRY)
            self._poll(key, outcome)
            if outcome.phase != "AwaitingApproval" and outcome.reason not in approvals.REFUSALS:
                self.pending_approvals.pop(key, None)
                self.awaiting_human.discard(key)
            else:
                self.awaiting_human.add(key)
            self._update_pending_gauge()

    def _approval_policies_changed(self) -> None:
        """The approval admission policies were installed or removed: what waits for a human says so now."""
        now = datetime.now(UTC)
        for key in list(self.awaiting_human):
            self._wake_at(key, now)

    def _replan_now(self, obj: dict[str, Any], outcome: Outcome) -> Outcome:
        """A stale or expired plan, or drift to correct: start the new plan in the same reconciliation."""
        replans = outcome.fields.get("replans")
        if replans is None or replans == (obj.get("status") or {}).get("replans"):
            return outcome
        if ((outcome.fields.get("jobs") or {}).get("step")) == "plan":  # the new plan is already started
            return outcome
        status = {**(obj.get("status") or {}), **outcome.fields, "replans": replans, "approval": None}
        follow = self.evaluate({**obj, "status": status})
        return Outcome(follow.state, outcome.reason, f"{outcome.message}; {follow.message}", follow.phase,
                       {**outcome.fields, **follow.fields},
                       (*outcome.domain_conditions, *follow.domain_conditions))

    def _wake_at(self, key: str, at: datetime) -> None:
        namespace, _, name = key.partition("/")
        self.wakeups.schedule_earliest(KIND.kind, namespace, name, at.timestamp())

    def _record_gauges(self, obj: dict[str, Any], outcome: Outcome) -> None:
        """Alerts' inputs, from the status about to be written (gauges always match what status says)."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        status = {**(obj.get("status") or {}), **outcome.fields}
        metrics.INFRA_DRIFTED_RESOURCES.labels(namespace, name).set(
            int((status.get("drift") or {}).get("count") or 0) if (status.get("drift") or {}).get("detected") else 0)
        if status.get("lastAppliedAt"):
            metrics.INFRA_LAST_APPLY.labels(namespace, name).set(_parse_time(status["lastAppliedAt"]).timestamp())
        metrics.TERRAFORM_STALE_LOCKS.labels(namespace, name).set(1 if (status.get("lock") or {}).get("stale") else 0)
        metrics.INFRA_DELETION_BLOCKED.labels(namespace, name).set(1 if outcome.phase == "DeletionBlocked" else 0)
        metrics.INFRA_WAITING_FOR_WINDOW.labels(namespace, name).set(1 if outcome.reason == "WaitingForWindow" else 0)

    def _wake_dependents(self, key: str, obj: dict[str, Any], outcome: Outcome) -> None:
        """A deployment that became Ready, or applied anew, wakes those whose dependsOn names it."""
        before = obj.get("status") or {}
        was_ready = before.get("phase") == "Ready"
        applied = outcome.fields.get("lastAppliedPlanId")
        if (outcome.state == "ready") != was_ready or (applied and applied != before.get("lastAppliedPlanId")):
            now = datetime.now(UTC)
            for dependent in list(self.dependents.get(key, ())):
                self._wake_at(dependent, now)

    def project_changed(self, namespace: str, name: str) -> None:
        """A DevOpsProject was reconciled (its change windows, its environments may have changed): its
        deployments look again, a moment later, once the project's status is written."""
        soon = datetime.now(UTC) + timedelta(seconds=1)
        for key in list(self.by_project.get(key_of(namespace, name), ())):
            self._wake_at(key, soon)

    def _update_pending_gauge(self) -> None:
        now = datetime.now(UTC)
        oldest = max(((now - at).total_seconds() for at in list(self.pending_approvals.values())), default=0.0)
        metrics.APPROVAL_PENDING_OLDEST.labels(KIND.kind).set(max(0.0, oldest))

    # -- deciding -----------------------------------------------------------------------------------

    def evaluate(self, obj: dict[str, Any]) -> Outcome:
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        status = dict(obj.get("status") or {})
        try:
            spec = InfraDeploymentSpec.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            problems = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            if metadata.get("deletionTimestamp"):
                return self._deletion(obj, None, status, problems)
            return Outcome.stalled("InvalidSpec", problems)
        if metadata.get("deletionTimestamp"):
            return self._deletion(obj, spec, status)
        try:
            access = resolve_project(self.runtime, namespace, spec.project_ref, spec.environment)
        except ProjectRefError as exc:
            if not exc.stalled:
                return Outcome.reconciling("WaitingForProject", str(exc), "Pending")
            return Outcome.stalled(exc.reason, str(exc))  # PolicyDenied stays in WAITING_REASONS: looked at again
        self.by_project.setdefault(access.key, set()).add(key_of(namespace, name))
        found = self._dependencies(obj, spec, access)
        if isinstance(found, Outcome):
            return found
        depends, dependency_digests, depends_condition = found
        replans = int(status.get("replans") or 0)
        handled = dict(status.get("handled") or {})
        requested_replan = _annotation(obj, REPLAN_ANNOTATION)
        if requested_replan and requested_replan != handled.get("replan") and not _job_running(status, "apply"):
            replans += 1  # a new request key: a new plan, whatever else changed
            handled["replan"] = requested_replan
            post_event(self.api, obj, "Normal", "ReplanRequested", f"{REPLAN_ANNOTATION}={requested_replan}: "
                       "making a new plan")
        revision, source_condition = self._git_revision(obj, spec, status)
        if source_condition is not None and source_condition[2] == "Resolving":  # its answer wakes this one
            return Outcome.reconciling("ResolvingSource", source_condition[3], "Pending",
                                       conditions=(source_condition,))
        try:
            inputs = resolve(self.api, self.runtime.config, namespace, name, obj, spec, access, replans,
                             dependency_digests, revision, rule=self.runtime.tenancy_rule(namespace))
        except InputError as exc:
            return Outcome.stalled(exc.reason, str(exc))
        # `handled` is shared: the drift and lock steps record the requests they act on in it.
        outcome = self._steps(obj, spec, access, inputs, {**status, "replans": replans, "handled": handled})
        fields: dict[str, Any] = {**outcome.fields, "suspended": spec.suspend, "dependencies": depends}
        if inputs.state is not None:  # recorded before any plan: the name a later look keeps (deploy/inputs.py)
            fields["state"] = inputs.state
        if replans != int(status.get("replans") or 0):
            fields.setdefault("replans", replans)
        conds: tuple[tuple[str, str, str, str], ...] = (depends_condition,) if depends_condition else ()
        if source_condition is not None:
            conds += (source_condition,)
        jobs = fields["jobs"] if "jobs" in fields else (status.get("jobs") or {})
        if not (jobs or {}).get("current"):  # no Job of ours runs: a lock held now is someone else's, or stale
            lock_fields, lock_conds = self._lock_check(obj, access, inputs, {**status, **fields, "handled": handled})
            fields.update(lock_fields)
            conds += lock_conds
        fields["handled"] = handled
        return Outcome(outcome.state, outcome.reason, outcome.message, outcome.phase, fields,
                       (*conds, *outcome.domain_conditions))

    def _git_revision(self, obj: dict[str, Any], spec: InfraDeploymentSpec, status: dict[str, Any]) -> tuple[
            str | None, tuple[str, str, str, str] | None]:
        """The commit a git source's branch or tag names now, looked up once per spec.interval (re-scheduled).

        Only hosts the tenancy policy's gitHosts allow are asked, and never on this thread (deploy/revisions.py):
        an answer not in yet is a short wait (`Resolving`), a failure a fixed message with its category.
        """
        git = spec.source.git
        if git is None or git.ref.commit:
            return None, None
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        wire = spec.source.to_wire()["git"]
        target = git_target(wire)
        rule = self.runtime.tenancy_rule(namespace)
        if not git_host_allowed(rule, git.url):
            return None, ("SourceChecked", "Unknown", "NotLookedUp",
                          f"the operator does not ask this git host for {target} (tenancy policy rule {rule.name!r} "
                          "has no gitHosts entry for it): the plan Job resolves it when it plans; to pick up a new "
                          f"commit, {annotate_command(namespace, name, REPLAN_ANNOTATION, '<now>')}")
        interval = parse_duration(spec.interval)
        key = (namespace, git.url, target, git.credentials_secret_ref.name if git.credentials_secret_ref else "")
        me = key_of(namespace, name)
        found = self.revisions.revision(key, interval.total_seconds(),
                                        lambda: remote_revision(self.api, namespace, wire),
                                        last_known=(status.get("plan") or {}).get("sourceRevision"),
                                        on_done=lambda: self._wake_at(me, datetime.now(UTC)))
        self._wake_at(me, datetime.now(UTC) + interval)
        if found.revision is None and found.pending and found.error is None:
            return None, ("SourceChecked", "Unknown", "Resolving", f"looking up {target} of {git.url}")
        if found.error is not None:
            return found.revision, ("SourceChecked", "False", found.category or "LookupFailed",
                                    f"{target} of {git.url} could not be looked up: {found.error}; the last known "
                                    f"commit {found.revision or '(none)'} stands, again in {spec.interval}")
        return found.revision, ("SourceChecked", "True", "Resolved", f"{target} of {git.url} is at "
                                f"{found.revision} (looked up every {spec.interval})")

    def _steps(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess,
               inputs: ResolvedInputs, status: dict[str, Any]) -> Outcome:
        """The next step for the current inputs; a Job already running finishes first (they share the lock)."""
        plan = status.get("plan") or {}
        jobs = status.get("jobs") or {}
        if plan.get("request") == inputs.request_key:
            return self._gate(obj, spec, access, inputs, status, PlanStatus.model_validate(plan))
        in_flight = (self._job(obj["metadata"]["namespace"], jobs["current"])
                     if jobs.get("current") and jobs.get("step") == "apply" and plan else None)
        if in_flight is not None and (observe(in_flight).active or (
                observe(in_flight).succeeded and status.get("lastAppliedPlanId") != plan.get("id"))):
            # An apply in flight is finished and recorded, whatever changed since; the new inputs plan after.
            applying = self._apply_step(obj, spec, access, inputs, status, PlanStatus.model_validate(plan), {}, (),
                                        found=in_flight)
            if applying.phase == "Applying":
                return Outcome(applying.state, applying.reason, f"{applying.message}; the changed spec is planned "
                               "once it finishes", applying.phase, applying.fields, applying.domain_conditions)
            return _combine(applying, self._plan_step(obj, spec, access, inputs, {**status, **applying.fields}))
        if jobs.get("current") and jobs.get("step") == "drift":
            running = self._job(obj["metadata"]["namespace"], jobs["current"])
            if running is not None and observe(running).active:
                return Outcome.reconciling("WaitingForJob", f"the spec changed while drift check Job {jobs['current']} "
                                           "runs: the new plan starts once it finishes (they share the state lock)",
                                           "Planning")
            cleared = {"current": None, "step": None, "startedAt": None}
            planned = self._plan_step(obj, spec, access, inputs, {**status, "jobs": {**jobs, **cleared}})
            return Outcome(planned.state, planned.reason, planned.message, planned.phase,
                           {"jobs": cleared, **planned.fields}, planned.domain_conditions)
        return self._plan_step(obj, spec, access, inputs, status)

    def _plan_step(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess,
                   inputs: ResolvedInputs, status: dict[str, Any]) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = key_of(namespace, name)
        retry = status.get("retry") or {}
        attempt = int(retry.get("attempt") or 0) if (retry.get("step") == "plan"
                                                     and retry.get("request") == inputs.request_key) else 0
        run_key = inputs.request_key if attempt == 0 else short_digest({"request": inputs.request_key,
                                                                        "attempt": attempt})
        job = job_name(name, "plan", run_key)
        found = self._job(namespace, job)
        if found is None:
            now = datetime.now(UTC)
            if attempt and _parse_time(retry.get("nextAttemptAt")) > now:
                self._wake_at(key, _parse_time(retry.get("nextAttemptAt")))
                return Outcome.reconciling("Retrying", f"plan retry {attempt} of {spec.retry.max_attempts} starts at "
                                           f"{retry.get('nextAttemptAt')} (the last one failed: "
                                           f"{(status.get('lastError') or {}).get('message', 'a transient error')})",
                                           "Planning")
            held = self._held(obj, spec, access, "plan", f"plan for the new inputs ({inputs.request_key})")
            if held is not None:
                return held
            self._create_job(job, inputs, "plan", obj)
            return Outcome.reconciling("Planning", f"planning in Job {job}", "Planning",
                                       {"jobs": {"current": job, "step": "plan", "startedAt": rfc3339()},
                                        "approval": None, "window": None},
                                       ((PLANNED, "False", "Planning", f"Job {job} is planning"),))
        seen = observe(found)
        if seen.active:
            return self._active(obj, seen, "plan", inputs, "Planning")
        result = self._result(namespace, job) or {}
        if seen.failed or not result.get("ok"):
            failed = self._job_failed(obj, seen, "plan", result)
            transient = (result.get("category") in TRANSIENT_CATEGORIES
                         or "state lock" in str(result.get("error") or "").lower())
            if transient and attempt < spec.retry.max_attempts:
                delay = parse_duration(spec.retry.backoff) * (2 ** attempt)
                at = datetime.now(UTC) + delay
                self._wake_at(key, at)
                return Outcome.reconciling(
                    "Retrying", f"{failed.message}; a transient failure ({result.get('category') or 'lock'}): retry "
                    f"{attempt + 1} of {spec.retry.max_attempts} at {rfc3339(at)}", "Planning",
                    {**failed.fields, "retry": {"step": "plan", "attempt": attempt + 1, "request": inputs.request_key,
                                                "nextAttemptAt": rfc3339(at), "category": result.get("category")}},
                    failed.domain_conditions)
            return failed
        metrics.TERRAFORM_PLAN_DURATION.labels(result.get("engine") or "unknown").observe(
            float(result.get("durationSeconds") or 0))
        checked = self._checked_plan(obj, job, inputs, result)
        if isinstance(checked, Outcome):
            return checked
        verified, identifier, runner_result = checked
        summary, truncated = bounded(PlanStatus, "summary", [{"address": c.address, "action": c.action}
                                                             for c in verified.changes])
        plan = PlanStatus(
            id=identifier, digest=verified.digest, inputs_digest=inputs.digest,
            generation=obj["metadata"].get("generation"), source_revision=result.get("sourceRevision"),
            add=verified.add, change=verified.change, destroy=verified.destroy, replace=verified.replace,
            summary=summary, summary_truncated=truncated, created_at=rfc3339(),
            artifact_secret=result.get("artifactSecret"), artifact_chunks=result.get("artifactChunks"),
            artifact_sha256=result.get("artifactSha256"), request=inputs.request_key, engine=result.get("engine"),
        )
        for action in ("add", "change", "destroy", "replace"):
            metrics.TERRAFORM_PLANNED_RESOURCES.labels(namespace, name, action).set(getattr(plan, action))
        described = f"{plan.add} to add, {plan.change} to change, {plan.destroy} to destroy, {plan.replace} to replace"
        post_event(self.api, obj, "Normal", "Planned", f"plan {plan.id} by {plan.engine}: {described}")
        status["plan"] = plan.to_wire()
        status["engine"] = plan.engine
        status["sourceRevision"] = plan.source_revision
        gated = self._gate(obj, spec, access, inputs, status, plan, fresh=True)
        return Outcome(gated.state, gated.reason, gated.message, gated.phase, gated.fields,
                       (runner_result, *gated.domain_conditions))

    def _checked_plan(self, obj: dict[str, Any], job: str, inputs: ResolvedInputs, result: dict[str, Any]) -> (
            Outcome | tuple[PlanSummary, str, tuple[str, str, str, str]]):
        """The plan as the operator reads it from its sha-verified artefact (never the runner's counts): the
        summary, its plan id and the RunnerResult condition; a Failed outcome when it cannot be read."""
        namespace = obj["metadata"]["namespace"]
        try:
            verified = results.read_plan(self.api, namespace, inputs.base, result)
        except results.ResultError as exc:
            message = f"plan Job {job} reported a plan the operator cannot check: {exc}; nothing is approved or applied"
            post_event(self.api, obj, "Warning", "PlanUnverified", message)
            return _failed("PlanUnverified", message, {"jobs": {"current": None, "step": None, "startedAt": None}},
                           ((PLANNED, "False", "PlanUnverified", message),
                            (results.CONDITION, "False", "Unverifiable", message)))
        identifier = results.computed_plan_id(verified, inputs.base, result)
        differences = results.plan_differences(result, verified, identifier)
        condition = results.condition(differences, f"plan {identifier}")
        if differences:
            post_event(self.api, obj, "Warning", "RunnerResultMismatch", condition[3])
        return verified, identifier, condition

    def _gate(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess, inputs: ResolvedInputs,
              status: dict[str, Any], plan: PlanStatus, fresh: bool = False) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        fields: dict[str, Any] = {"plan": plan.to_wire(), "engine": plan.engine, "sourceRevision": plan.source_revision,
                                  "jobs": {"current": None, "step": None, "startedAt": None},
                                  "retry": None} if fresh else {}
        planned = (PLANNED, "True", "Planned", f"plan {plan.id} ({plan.engine}): {plan.add} to add, {plan.change} to "
                   f"change, {plan.destroy} to destroy, {plan.replace} to replace")
        gate = checks.run_checks(_summary_view(plan), spec.tests.pre)
        fields["tests"] = {"status": str(gate.status), "gatePassed": gate.gate_passed, "planId": plan.id,
                           "checks": [{"name": c.name, "status": str(c.status), "findings": len(c.findings),
                                       "message": c.message} for c in gate.checks],
                           "completedAt": (status.get("tests") or {}).get("completedAt") if not fresh else rfc3339()}
        tested = (TESTED, "True" if gate.gate_passed else "False", "Passed" if gate.gate_passed else "GateFailed",
                  gate.message)
        if not gate.gate_passed:
            return Outcome.stalled("GateFailed", f"plan {plan.id}: {gate.message}", fields, (planned, tested))
        if status.get("lastAppliedPlanId") == plan.id:
            return self._drift(obj, spec, access, inputs, {**status, **fields}, Outcome.ready(
                "Applied", f"plan {plan.id} is applied ({status.get('resourceCount', 0)} resources)", fields,
                (planned, tested)))
        # No changes, and no interrupted apply whose effects (in the state) outputs and the registry lack yet.
        if plan.add + plan.change + plan.destroy + plan.replace == 0 and not status.get("interruptedApply"):
            return self._drift(obj, spec, access, inputs, {**status, **fields}, Outcome.ready(
                "UpToDate", f"plan {plan.id}: no changes, the infrastructure matches the module", fields,
                (planned, tested, (APPLIED, "True", "NoChanges", "nothing to apply"))))
        decision, request = self._decide(obj, spec, access, plan, status)
        decision, policy = self._safeguard(obj, access, decision)
        previous = ApprovalStatus.model_validate(status["approval"]) if status.get("approval") else None
        fields["approval"] = decision.status(request, datetime.now(UTC), previous).to_wire()
        approved = decision.condition()
        if decision.state == ApprovalState.EXPIRED:
            fields["replans"] = int(status.get("replans") or 0) + 1
            post_event(self.api, obj, "Normal", "ApprovalExpired", decision.message)
            return Outcome.reconciling("ApprovalExpired", decision.message + "; re-planning", "Planning", fields,
                                       (planned, tested, approved))
        if not decision.approved:
            self.pending_approvals.setdefault(key_of(namespace, name), request.requested_at)
            if decision.expires_at is not None:
                self._wake_at(key_of(namespace, name), decision.expires_at)
            # A refused approval is bad input (Stalled, a Warning Event): the plan still waits for a good one.
            return Outcome("stalled" if decision.refused else "reconciling", decision.reason, decision.message,
                           "AwaitingApproval", fields, (planned, tested, approved, *policy))
        apply_job = self._job(namespace, job_name(name, "apply", plan.id))
        if apply_job is None:
            held = self._held(obj, spec, access, "apply", f"plan {plan.id} is approved")
            if held is not None:
                return Outcome(held.state, held.reason, held.message, held.phase, {**fields, **held.fields},
                               (planned, tested, approved, *policy, *held.domain_conditions))
            fields["window"] = None
        window_open = ((("ChangeWindow", "True", "Open", "the change window is open"),)
                       if access.environment.change_windows else
                       (("ChangeWindow", "True", "NoWindows", "the environment has no change windows"),)
                       if _has_condition(obj, "ChangeWindow") else ())
        return self._apply_step(obj, spec, access, inputs, status, plan, fields,
                                (planned, tested, approved, *policy, *window_open), found=apply_job)

    def _held(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess, operation: str,
              what: str) -> Outcome | None:
        """Why a Job may not start now (suspend, a closed change window), or None; a window is woken for."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if spec.suspend:
            return Outcome.reconciling("Suspended", f"{what}; spec.suspend is true, so no {operation} Job starts: "
                                       "unset it to continue", "Suspended", {"window": None})
        state = windows.evaluate(access.environment.change_windows, operation, datetime.now(UTC))
        if state.open:
            return None
        when = (f"opens {rfc3339(state.next_open)}" if state.next_open else
                "does not open within a year (check the windows)")
        if state.next_open is not None:
            self._wake_at(key_of(namespace, name), state.next_open)
        message = (f"{what}; {operation} waits for environment {access.environment.name}'s change window: "
                   f"{state.reason}; the next window {when}")
        return Outcome.reconciling("WaitingForWindow", message, "WaitingForWindow",
                                   {"window": _window_wire(state, operation)},
                                   (("ChangeWindow", "False", "Closed", message),))

    def _decide(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess, plan: PlanStatus,
                status: dict[str, Any]) -> tuple[approvals.ApprovalDecision, approvals.ApprovalRequest]:
        mode = spec.approval.mode
        destructive = plan.destroy > 0 or plan.replace > 0
        auto = access.environment.auto_approve and (
            mode == ApprovalMode.AUTO or (mode == ApprovalMode.NON_DESTRUCTIVE and not destructive))
        expires = approvals.expiry(parse_duration(spec.approval.expires_after) if spec.approval.expires_after else None,
                                   access.production)
        request = approvals.ApprovalRequest(
            subject="plan", digest=plan.id, requested_at=_parse_time(plan.created_at), production=access.production,
            auto_allowed=auto, expires_after=expires,
            how_to_approve=approve_command(obj["metadata"]["namespace"], obj["metadata"]["name"], plan.id),
        )
        given = approvals.GivenApproval(digest=spec.approval.plan_id, approved_by=spec.approval.approved_by)
        return approvals.decide(request, given, datetime.now(UTC)), request

    def _safeguard(self, obj: dict[str, Any], access: ProjectAccess, decision: approvals.ApprovalDecision,
                   ) -> tuple[approvals.ApprovalDecision, tuple[tuple[str, str, str, str], ...]]:
        """For a decision that waits for a human (or a manual approval): the ApprovalPolicyEnforced condition,
        and the approval refused where the required policies are not enforced or the two-person rule says no."""
        if decision.state not in (ApprovalState.PENDING, ApprovalState.VOID, ApprovalState.APPROVED):
            return decision, ()
        guards, policy = admission.safeguards(
            self.runtime.approval_policies, self.runtime.config, KIND.kind, obj, decision=decision,
            distinct_in_project=access.environment.require_distinct_approver,
            namespace_labels=self.runtime.namespace_labels)
        guarded = approvals.safeguard(decision, guards)
        if guarded.refused and not _has_condition_reason(obj, approvals.APPROVED_CONDITION, guarded.refused):
            metrics.APPROVALS_REFUSED.labels(KIND.kind, guarded.refused).inc()
        return guarded, (policy.condition(),)

    def _apply_step(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess,
                    inputs: ResolvedInputs, status: dict[str, Any], plan: PlanStatus, fields: dict[str, Any],
                    conds: tuple[tuple[str, str, str, str], ...], found: Any = UNREAD) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        job = job_name(name, "apply", plan.id)
        found = self._job(namespace, job) if found is UNREAD else found
        if found is None:
            self._create_job(job, inputs, "apply", obj, plan)
            fields["jobs"] = {"current": job, "step": "apply", "startedAt": rfc3339()}
            return Outcome.reconciling("Applying", f"applying plan {plan.id} in Job {job}", "Applying", fields,
                                       (*conds, (APPLIED, "False", "Applying", f"Job {job} is applying")))
        seen = observe(found)
        if seen.active:
            outcome = self._active(obj, seen, "apply", inputs, "Applying")
            return Outcome(outcome.state, outcome.reason, outcome.message, outcome.phase,
                           {**fields, **outcome.fields}, (*conds, *outcome.domain_conditions))
        result = self._result(namespace, job) or {}
        if result.get("stale"):
            metrics.TERRAFORM_STALE_PLANS.inc()
            fields["replans"] = int(status.get("replans") or 0) + 1
            fields["approval"] = None
            fields["jobs"] = {"current": None, "step": None, "startedAt": None}
            message = (f"plan {plan.id} is stale ({result.get('error')}): it is made again and needs a new approval; "
                       "nothing was applied")
            fields["interruptedApply"] = plan.id  # a replacement pod's stale plan: the first pod may have applied
            return Outcome.reconciling("StalePlan", message, "Planning", fields, conds)
        if (seen.failed or not result.get("ok")) and _saved_and_released(result):
            # SIGTERM (the pod deleted, evicted, drained): Terraform finished the resource in flight, saved the
            # state and released the lock, so the saved plan is stale; what remains is planned again.
            metrics.TERRAFORM_JOB_FAILURES.labels("apply", "Interrupted").inc()
            fields["replans"] = int(status.get("replans") or 0) + 1
            fields["approval"] = None
            fields["jobs"] = {"current": None, "step": None, "startedAt": None,
                              "lastFailed": {"name": seen.name, "step": "apply", "reason": "Interrupted",
                                             "exitCode": None, "logSecret": result_name(job), "at": rfc3339()}}
            message = (f"the apply of plan {plan.id} was interrupted (its runner pod was stopped with SIGTERM: "
                       "deleted, evicted or drained); Terraform saved the state with what it had done and released "
                       "the lock, so the remaining changes are planned again (a new approval where the environment "
                       "needs one)")
            fields["interruptedApply"] = plan.id
            return Outcome.reconciling("ApplyInterrupted", message, "Planning", fields, conds)
        # A runner that reported a finished apply stands even when its Job counts the pod as failed (the pod was
        # deleted after the report: the Job controller counts a deleted pod as failed).
        if not result.get("ok"):
            failed = self._job_failed(obj, seen, "apply", result)
            return Outcome(failed.state, failed.reason, failed.message, failed.phase, {**fields, **failed.fields},
                           (*conds, *failed.domain_conditions))
        return self._verify_and_register(obj, spec, access, inputs, status, plan, result, fields, conds)

    def _verify_and_register(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess,
                             inputs: ResolvedInputs,
                             status: dict[str, Any], plan: PlanStatus, result: dict[str, Any],
                             fields: dict[str, Any], conds: tuple[tuple[str, str, str, str], ...]) -> Outcome:
        namespace = obj["metadata"]["namespace"]
        metrics.TERRAFORM_APPLY_DURATION.labels(result.get("engine") or "unknown").observe(
            float(result.get("durationSeconds") or 0))
        checked = self._checked_apply(obj, inputs, plan, result)
        if isinstance(checked, Outcome):
            return Outcome(checked.state, checked.reason, checked.message, checked.phase,
                           {**fields, **checked.fields}, (*conds, *checked.domain_conditions))
        resources, changes, source, runner_result = checked
        conds = (*conds, runner_result)
        verification = verify_applied(changes, resources)
        access_key = (spec.project_ref.namespace or namespace, spec.project_ref.name)
        try:
            registry_status = self._register(obj, access_key, spec.environment, resources, changes, plan)
            registry_status["resourcesFrom"] = source
            if registry_status.get("resourcesTruncated"):
                post_event(self.api, obj, "Warning", "RegistryTruncated", f"plan {plan.id} left {len(resources)} "
                           f"resources; the registry records the first {registry.MAX_RESOURCES_PER_DEPLOYMENT} (one "
                           "deployment's share of the shared registry), marked truncated in DEPLOYED.md")
        except StoreError as exc:  # e.g. a registry too large for one ConfigMap: the apply itself stands
            registry_status = RegistryStatus(
                config_map_name=registry.registry_name(access_key[1], spec.environment)).to_wire()
            post_event(self.api, obj, "Warning", "RegistryNotUpdated", f"plan {plan.id} was applied, but the "
                       f"registry was not updated: {exc}")
        names, names_cut = bounded(OutputsStatus, "names", result.get("outputNames") or [])
        secret_names, secret_cut = bounded(OutputsStatus, "sensitive_names", result.get("sensitiveOutputNames") or [])
        at = rfc3339()
        fields.update({
            "lastAppliedPlanId": plan.id, "lastAppliedRevision": result.get("sourceRevision"), "lastAppliedAt": at,
            "interruptedApply": None,
            "resourceCount": len(resources),
            "inputsSnapshotSecret": result.get("inputsSnapshotSecret"), "lock": None,
            "jobs": {"current": None, "step": None, "startedAt": None},
            "outputs": OutputsStatus(config_map_name=inputs.base.outputs_config_map,
                                     secret_name=inputs.base.outputs_secret if result.get("sensitiveOutputsExported")
                                     else None, names=names, names_truncated=names_cut, sensitive_names=secret_names,
                                     sensitive_names_truncated=secret_cut).to_wire(),
            "registry": registry_status,
            "verification": {"status": "PASS" if verification.passed else "FAIL", "planId": plan.id,
                             "checked": verification.checked, "missing": len(verification.missing),
                             "failed": len(verification.unexpected), "completedAt": at},
        })
        applied = (APPLIED, "True", "Applied", f"plan {plan.id} applied by {result.get('engine')}")
        post_event(self.api, obj, "Normal", "Applied", f"plan {plan.id} applied: {len(resources)} "
                   f"resources; registry {registry_status['configMapName']}")
        if not verification.passed:
            return _failed("VerificationFailed", f"plan {plan.id} was applied, but {verification.describe()}",
                           fields, (*conds, applied))
        message = (f"plan {plan.id} applied and verified: {verification.describe()}; resources in ConfigMap "
                   f"{registry_status['configMapName']} (DEPLOYED.md)")
        # A new apply restarts drift detection: its clock, its count, and what it found before.
        # Every key written: status is merge-patched, so a key left out would keep what the last check found.
        fresh_drift = {**status, **fields, "drift": {
            "detected": False, "count": 0, "resources": [], "resourcesTruncated": False, "checks": 0, "job": None,
            "checkedPlanId": None, "lastChecked": None, "correction": None,
            "correctedAt": (status.get("drift") or {}).get("correctedAt")}}
        if (status.get("drift") or {}).get("detected"):
            resolved = f"plan {plan.id} was applied: the infrastructure matches the module again"
            conds = (*conds, (DRIFTED, "False", "Applied", resolved))
            post_event(self.api, obj, "Normal", "DriftResolved", resolved)
        return self._drift(obj, spec, access, inputs, fresh_drift, Outcome.ready("Applied", message, fields,
                                                                                 (*conds, applied)))

    def _checked_apply(self, obj: dict[str, Any], inputs: ResolvedInputs, plan: PlanStatus,
                       result: dict[str, Any]) -> Outcome | tuple[list[StateResource], list[Change], str,
                                                                  tuple[str, str, str, str]]:
        """What an apply left, as the operator reads it: the resources in the backend's state (the runner's
        list only where the operator does not read the backend, marked reported), the changes of the approved
        plan from its artefact (the digest status recorded), and the RunnerResult condition."""
        namespace = obj["metadata"]["namespace"]
        try:
            held = results.read_state(self.api, inputs.base)
            planned = results.read_plan(self.api, namespace, inputs.base, {
                "artifactSecret": plan.artifact_secret, "artifactSha256": plan.artifact_sha256})
        except results.ResultError as exc:
            message = f"plan {plan.id} was applied, but the operator cannot read what it left: {exc}"
            post_event(self.api, obj, "Warning", "ApplyUnverified", message)
            return _failed("ApplyUnverified", message, {"jobs": {"current": None, "step": None, "startedAt": None}},
                           ((results.CONDITION, "False", "Unverifiable", message),))
        if held is None:
            resources, source = results.reported_resources(result), results.REPORTED
            condition = (results.CONDITION, "Unknown", "Reported", f"plan {plan.id}: the resources are the runner's "
                         "list (the operator does not read an S3 backend's state), marked reported in the registry")
        else:
            resources, source = held, results.FROM_STATE
            differences = results.resource_differences(result, held)
            condition = results.condition(differences, f"apply of plan {plan.id}")
            if differences:
                post_event(self.api, obj, "Warning", "RunnerResultMismatch", condition[3])
        return resources, list(planned.changes), source, condition

    def _register(self, obj: dict[str, Any], project: tuple[str, str], environment: str,
                  resources: list[StateResource], changes: list[Change], plan: PlanStatus) -> dict[str, Any]:
        project_namespace, project_name = project
        project_obj = CustomObjectsApi(self.api).get_namespaced_custom_object(
            API_GROUP, API_VERSION, project_namespace, PROJECT_KIND.plural, project_name,
            _request_timeout=REQUEST_TIMEOUT)
        assert isinstance(project_obj, dict)
        me = key_of(obj["metadata"]["namespace"], obj["metadata"]["name"])
        cm_name = registry.registry_name(project_name, environment)
        title = f"{project_name} / {environment}"
        document = ConfigMapDocument(
            self.api, project_namespace, cm_name, registry.REGISTRY_KEY, owner=project_obj,
            labels={f"{API_GROUP}/registry": "true"},
            render=lambda doc: {registry.DEPLOYED_KEY: registry.render_deployed_md(doc, title=title)})
        stored = document.update(lambda doc: registry.record_apply(
            doc, deployment=me, resources=resources, changes=changes, plan_id=plan.id,
            revision=plan.source_revision, engine=plan.engine or "", at=rfc3339()))
        status = self._registry_status(stored, me, cm_name)
        for other in {c.other for c in registry.conflicts_of(stored, me)}:
            self._refresh_conflicts(stored, other, cm_name)
        return status

    @staticmethod
    def _registry_status(document: Any, deployment: str, cm_name: str) -> dict[str, Any]:
        found = registry.conflicts_of(document, deployment)
        listed, cut = bounded(RegistryStatus, "conflicts", found)
        return RegistryStatus(
            config_map_name=cm_name, resource_count=len(registry.resources_of(document, deployment)),
            conflicts=[{"resourceId": c.key, "address": c.address, "deployment": c.other}
                       for c in listed],
            conflicts_truncated=cut, resources_truncated=registry.truncation_of(document, deployment) is not None,
        ).to_wire()

    def _refresh_conflicts(self, document: Any, other: str, cm_name: str) -> None:
        """Two deployments claiming one resource: the other one's status says so too."""
        namespace, _, name = other.partition("/")
        try:
            CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                API_GROUP, API_VERSION, namespace, KIND.plural, name,
                {"status": {"registry": self._registry_status(document, other, cm_name)}},
                _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
        else:
            post_event(self.api, {"apiVersion": KIND.api_version, "kind": KIND.kind,
                                  "metadata": {"namespace": namespace, "name": name}}, "Warning", "RegistryConflict",
                       "another deployment claims resources this one manages: see status.registry.conflicts")

    # -- day 2: drift ---------------------------------------------------------------------------------

    def _drift(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess, inputs: ResolvedInputs,
               status: dict[str, Any], ready: Outcome) -> Outcome:
        """Once Ready: record a finished drift check, start a due (or requested) one, or schedule the next."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = key_of(namespace, name)
        settings = spec.drift_detection
        state = dict(status.get("drift") or {})
        jobs = status.get("jobs") or {}
        handled = status["handled"] if isinstance(status.get("handled"), dict) else {}
        fields: dict[str, Any] = {}
        conds: list[tuple[str, str, str, str]] = []
        message = ready.message
        follow: Outcome | None = None
        if jobs.get("current") and jobs.get("step") == "drift":
            found = self._job(namespace, jobs["current"])
            seen = observe(found) if found is not None else None
            if seen is not None and seen.active:
                return Outcome(ready.state, ready.reason, f"{message}; drift check running in Job {seen.name}",
                               ready.phase, {**ready.fields, "drift": state}, ready.domain_conditions)
            fields["jobs"] = {**jobs, "current": None, "step": None, "startedAt": None}
            result = (self._result(namespace, jobs["current"]) or {}) if seen is not None else {}
            state["lastChecked"] = rfc3339()
            if seen is None or seen.failed or not result.get("ok"):
                error = redact(str(result.get("error") or (seen.message if seen else None)
                                   or "the drift check Job is gone without a result"))[:2000]
                conds.append((DRIFTED, "Unknown", "DriftCheckFailed", f"the drift check failed: {error}"))
                post_event(self.api, obj, "Warning", "DriftCheckFailed", f"drift check Job {jobs['current']}: {error}")
                fields["lastError"] = {"category": result.get("category") or "unknown", "message": error,
                                       "step": "drift", "at": rfc3339()}
            else:
                follow = self._drift_found(obj, spec, access, status, state, result, conds)
        requested = _annotation(obj, DRIFT_CHECK_ANNOTATION)
        requested = requested if requested and requested != handled.get("driftCheck") else None
        interval = parse_duration(settings.interval)
        last = _parse_time(state["lastChecked"]) if state.get("lastChecked") else None
        applied = _parse_time(status["lastAppliedAt"]) if status.get("lastAppliedAt") else None
        due_at = drift.next_check(last, applied, interval) or datetime.now(UTC)
        running = bool((fields.get("jobs") or jobs).get("current"))
        if follow is None and not running and (requested or (settings.enabled and due_at <= datetime.now(UTC))):
            held = self._held(obj, spec, access, "plan", "a drift check is due")
            if held is not None:  # _held scheduled the window's opening; an unsuspend is a spec change
                message = f"{message}; {held.message}"
            else:
                checks = int(state.get("checks") or 0) + 1
                job = job_name(name, "drift", short_digest({"request": inputs.request_key, "check": checks,
                                                            "plan": status.get("lastAppliedPlanId")}))
                self._create_job(job, inputs, "drift", obj)  # already there (a restart): the same check, kept
                state.update(checks=checks, job=job, checkedPlanId=status.get("lastAppliedPlanId"))
                fields["jobs"] = {"current": job, "step": "drift", "startedAt": rfc3339()}
                message = f"{message}; drift check running in Job {job}"
                if requested:
                    handled["driftCheck"] = requested
                    post_event(self.api, obj, "Normal", "DriftCheckRequested",
                               f"{DRIFT_CHECK_ANNOTATION}={requested}: checking for drift now (Job {job})")
        elif requested and not running:
            handled["driftCheck"] = requested  # asked while a correction is under way: that plan checks anyway
        # The next check, in status and as a wake-up; never a moment already past (that would wake every tick
        # while a check is held by suspend or a window).
        upcoming = drift.next_check(_parse_time(state["lastChecked"]), applied, interval) if state.get(
            "lastChecked") else due_at
        state["nextCheck"] = rfc3339(upcoming) if settings.enabled and upcoming is not None else None
        if (settings.enabled and upcoming is not None and upcoming > datetime.now(UTC)
                and not (fields.get("jobs") or jobs).get("current")):
            self._wake_at(key, upcoming)
        fields["drift"] = state
        if follow is not None:
            return Outcome(follow.state, follow.reason, follow.message, follow.phase,
                           {**ready.fields, **fields, **follow.fields}, (*ready.domain_conditions, *conds))
        if state.get("detected"):
            message = f"{message}; drift: {state.get('count')} resource(s) changed outside Terraform (status.drift)"
        return Outcome(ready.state, ready.reason, message, ready.phase, {**ready.fields, **fields},
                       (*ready.domain_conditions, *conds))

    def _drift_found(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess,
                     status: dict[str, Any], state: dict[str, Any], result: dict[str, Any],
                     conds: list[tuple[str, str, str, str]]) -> Outcome | None:
        """Record what a finished drift check found; a correcting plan where allowed (returned to start it)."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        finding = drift.drift_from_result(result.get("changes") or [], result.get("changesTotal"))
        was = bool(state.get("detected"))
        state.update(detected=finding.detected, count=finding.count, resources=finding.resources,
                     resourcesTruncated=finding.truncated)
        if not finding.detected:
            state["correction"] = None
            conds.append((DRIFTED, "False", "NoDrift", finding.describe()))
            if was:
                post_event(self.api, obj, "Normal", "DriftResolved", finding.describe())
            return None
        if not was:
            post_event(self.api, obj, "Warning", "DriftDetected", finding.describe())
        replan_hint = annotate_command(namespace, name, REPLAN_ANNOTATION, "$(date +%s)")
        auto = (spec.drift_detection.auto_correct and not access.production and access.environment.auto_approve
                and spec.approval.mode != ApprovalMode.MANUAL)
        if spec.drift_detection.auto_correct and not auto:
            why = ("production never corrects drift without an approval" if access.production else
                   "autoCorrect needs an environment with autoApprove and spec.approval.mode auto or non-destructive")
            state["correction"] = f"not corrected automatically: {why}; to correct it, `{replan_hint}` and approve"
        elif not auto:
            state["correction"] = f"to correct it: `{replan_hint}`, review the plan and approve it"
        conds.append((DRIFTED, "True", "DriftDetected", f"{finding.describe()}; {state['correction'] or ''}".rstrip(
            "; ")))
        if not auto:
            return None
        # The correction is a plan like any other: the same gate, the same approval rules (auto here).
        state["correction"] = "a correcting plan was made (same gate and approval as any plan)"
        state["correctedAt"] = rfc3339()
        conds[-1] = (DRIFTED, "True", "Correcting", f"{finding.describe()}; {state['correction']}")
        post_event(self.api, obj, "Normal", "DriftCorrection", f"{finding.describe()}: planning a correction")
        replans = int(status.get("replans") or 0) + 1
        return Outcome.reconciling("DriftCorrection", f"{finding.describe()}; re-planning to correct it", "Planning",
                                   {"replans": replans, "approval": None})

    # -- day 2: dependencies --------------------------------------------------------------------------

    def _dependencies(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess) -> (
            Outcome | tuple[dict[str, Any] | None, dict[str, str], tuple[str, str, str, str] | None]):
        """spec.dependsOn: a cycle stalls; a dependency not Ready waits; the Ready ones' digests re-plan on change."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        me = key_of(namespace, name)
        if not spec.depends_on:
            return None, {}, (("DependenciesReady", "True", "NoDependencies", "spec.dependsOn is empty")
                              if _has_condition(obj, "DependenciesReady") else None)
        # The operator reads a dependency's status and outputs on this deployment's behalf: only in its own
        # namespace, or in its project's (which granted this namespace, as for projectRef).
        allowed = {namespace, access.namespace}
        for index, ref in enumerate(spec.depends_on):
            if (ref.namespace or namespace) not in allowed:
                message = (f"spec.dependsOn[{index}]: a dependency in namespace {ref.namespace} is refused: "
                           f"dependencies live in {namespace} or in the project's namespace {access.namespace}")
                return Outcome.stalled("DependencyNotAllowed", message, {"dependencies": {
                    "ready": False, "waiting": [], "outputsDigest": None}},
                    (("DependenciesReady", "False", "DependencyNotAllowed", message),))
        seen: dict[str, dict[str, Any] | None] = {me: obj}

        def fetch(dep: str) -> dict[str, Any] | None:
            if dep not in seen:
                ns, _, dep_name = dep.partition("/")
                seen[dep] = self._get_deployment(ns, dep_name)
            return seen[dep]

        def depends_on(dep: str) -> list[str]:
            found = fetch(dep)
            refs = ((found or {}).get("spec") or {}).get("dependsOn") or []
            dep_ns = dep.partition("/")[0]
            return [key_of(r.get("namespace") or dep_ns, r.get("name", "")) for r in refs if isinstance(r, dict)]

        cycle = dependencies.find_cycle(me, depends_on)
        if cycle:
            message = (f"spec.dependsOn: a dependency cycle {' -> '.join(cycle)}: nothing in it can ever be Ready "
                       "first; remove one of these dependsOn entries")
            return Outcome.stalled("DependencyCycle", message, {"dependencies": {"ready": False, "waiting": [],
                                                                                 "outputsDigest": None}},
                                   (("DependenciesReady", "False", "DependencyCycle", message),))
        keys = [key_of(ref.namespace or namespace, ref.name) for ref in spec.depends_on]
        ready: dict[str, bool | None] = {}
        for dep in keys:
            self.dependents.setdefault(dep, set()).add(me)
            found = fetch(dep)
            ready[dep] = None if found is None else any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (found.get("status") or {}).get("conditions") or [])
        waiting = dependencies.not_ready(keys, ready)
        if waiting:
            fields_named = [f"spec.dependsOn[{i}]" for i, dep in enumerate(keys) if not ready.get(dep)]
            missing = any(ready.get(dep) is None for dep in keys)
            message = f"{', '.join(fields_named)}: waiting for {', '.join(waiting)}"
            listed, _ = bounded(DependenciesStatus, "waiting", waiting)
            return Outcome.reconciling("WaitingForDependencies", message, "WaitingForDependencies",
                                       {"dependencies": {"ready": False, "waiting": listed, "outputsDigest": None}},
                                       (("DependenciesReady", "False", "NotFound" if missing else "NotReady",
                                         message),))
        digests = {dep: self._dependency_digest(seen[dep] or {}) for dep in keys}
        wire = {"ready": True, "waiting": [], "outputsDigest": short_digest(digests)}
        return wire, digests, ("DependenciesReady", "True", "Ready", f"{len(keys)} dependency(ies) Ready")

    def _dependency_digest(self, dep: dict[str, Any]) -> str:
        """What a dependency's dependents plan against: its applied plan and its published outputs."""
        status = dep.get("status") or {}
        outputs_map = (status.get("outputs") or {}).get("configMapName")
        data: dict[str, Any] = {}
        if outputs_map:
            found = self._get(f"/api/v1/namespaces/{dep['metadata']['namespace']}/configmaps/{outputs_map}")
            data = dict((found or {}).get("data") or {})
        return short_digest({"plan": status.get("lastAppliedPlanId"), "outputs": data})

    # -- day 2: locks ---------------------------------------------------------------------------------

    def _lease_path(self, inputs: ResolvedInputs) -> str | None:
        config = inputs.base.backend_override.get("terraform", {}).get("backend", {}).get("kubernetes")
        if not config:
            return None  # the S3 backend's DynamoDB lock is not inspected (docs/operations.md, "Locks")
        return (f"/apis/coordination.k8s.io/v1/namespaces/{config['namespace']}/leases/"
                f"{backends.lock_lease_name(config['secret_suffix'])}")

    def _describe_lock(self, obj: dict[str, Any], held: backends.LockInfo, previous: Mapping[str, Any],
                       running: tuple[str, str | None] | None = None) -> tuple[dict[str, Any], locks.HolderState]:
        """status.lock for a held lock, every key written (status is merge-patched); `running` is our Job and pod."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        pod = locks.holder_pod(held.who)
        ours = locks.is_runner_pod(pod, name)
        job: str | None
        if running is not None and pod is not None and pod == running[1]:
            state, job = locks.HolderState.RUNNING, running[0]
        else:
            pod_obj = self._get(f"/api/v1/namespaces/{namespace}/pods/{pod}") if ours else None
            state = locks.holder_state(pod_obj, ours=ours)
            job = (((pod_obj or {}).get("metadata") or {}).get("labels") or {}).get("job-name")
            if job is None and ours and pod:
                job = pod.rsplit("-", 1)[0]  # a runner pod is `<job>-<5 characters>`
        same = previous.get("id") == held.id
        stale = state == locks.HolderState.GONE
        return {"id": held.id, "operation": held.operation, "who": held.who, "holderJob": job, "holderPod": pod,
                "since": held.created, "holderState": str(state), "stale": stale,
                "staleSince": ((previous.get("staleSince") if same else None) or rfc3339()) if stale else None,
                "releaseRefused": previous.get("releaseRefused") if same else None}, state

    def _lock_check(self, obj: dict[str, Any], access: ProjectAccess, inputs: ResolvedInputs,
                    status: dict[str, Any]) -> tuple[dict[str, Any], tuple[tuple[str, str, str, str], ...]]:
        """With no Job of ours running: is the state lock held, by whom, is it stale, may it be released?"""
        path = self._lease_path(inputs)
        if path is None:
            return {}, ()
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        lease = self._get(path)
        held = backends.lock_from_lease(lease)
        handled = status["handled"] if isinstance(status.get("handled"), dict) else {}
        requested = _annotation(obj, RELEASE_LOCK_ANNOTATION)
        requested = requested if requested and requested != handled.get("releaseLock") else None
        free = (("StaleLock", "False", "NotHeld", "the state lock is free"),) if _has_condition(
            obj, "StaleLock") else ()
        if held is None or lease is None:
            if requested:
                handled["releaseLock"] = requested
            return {"lock": None}, free
        previous = status.get("lock") or {}
        lock, state = self._describe_lock(obj, held, previous)
        pod, job = lock["holderPod"], lock["holderJob"]
        decision = locks.decide_release(lock_id=held.id, state=state, pod=pod,
                                        auto_release=access.environment.auto_release_stale_locks,
                                        requested=requested)
        # A request for a lock whose pod still exists stays pending (released once the pod is gone); one naming
        # another lock, or a lock held outside our runners, is refused for good.
        if requested and (decision.release or (decision.refused and (
                requested != held.id or state == locks.HolderState.FOREIGN))):
            handled["releaseLock"] = requested
        by = _annotation(obj, REQUESTED_BY_ANNOTATION) if decision.how == "annotation" else None
        if decision.release:
            try:
                call_json(self.api, "PUT", path, body=backends.released_lease(lease), timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                if exc.status != 409:  # taken or released meanwhile: look again next time
                    raise
            else:
                record = LockRelease(id=held.id, holder_job=job, holder_pod=pod, operation=held.operation,
                                     how=str(decision.how), requested_by=by, released_at=rfc3339()).to_wire()
                releases = [*(status.get("lockReleases") or []), record][-10:]
                asked = ("environment policy autoReleaseStaleLocks" if decision.how == "auto" else
                         f"asked with {RELEASE_LOCK_ANNOTATION}" + (f" by {by}" if by else ""))
                text = (f"released state lock {held.id} ({held.operation}) held by pod {pod} of Job {job}, which no "
                        f"longer exists ({asked})")
                metrics.TERRAFORM_LOCK_RELEASES.labels(str(decision.how)).inc()
                logger.warning("InfraDeployment %s/%s: %s", namespace, name, text)
                post_event(self.api, obj, "Warning", "LockReleased", text)
                return {"lock": None, "lockReleases": releases}, (("StaleLock", "False", "Released", text),)
        if decision.refused and decision.refused != lock["releaseRefused"]:
            post_event(self.api, obj, "Warning", "LockReleaseRefused", decision.refused)
        if decision.refused:
            lock["releaseRefused"] = decision.refused
        if state == locks.HolderState.GONE:
            how = annotate_command(namespace, name, RELEASE_LOCK_ANNOTATION, held.id)
            text = (f"state lock {held.id} ({held.operation}) is held by pod {pod} of Job {job}, which no longer "
                    f"exists: release it with `{how}` (or let the environment's autoReleaseStaleLocks do it)")
            return {"lock": lock}, (("StaleLock", "True", "HolderGone", text),)
        if state == locks.HolderState.FOREIGN:
            text = (f"state lock {held.id} ({held.operation}) is held by {held.who}, not by a runner of this "
                    "deployment: plans wait for it; if it is dead, `terraform force-unlock` it")
            return {"lock": lock}, (("StaleLock", "Unknown", "HeldElsewhere", text),)
        text = (f"state lock {held.id} ({held.operation}) is held by pod {pod} ({state}), which exists: it is not "
                "stale and is never released while its pod exists")
        return {"lock": lock}, (("StaleLock", "False", "HolderExists", text),)

    # -- day 2: destroy on delete ---------------------------------------------------------------------

    def _sync_finalizer(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The destroy finalizer is on exactly the deployments with destroyOnDelete (and not being deleted)."""
        metadata = obj["metadata"]
        if metadata.get("deletionTimestamp"):
            return obj
        wanted = bool((obj.get("spec") or {}).get("destroyOnDelete"))
        finalizers = list(metadata.get("finalizers") or [])
        if wanted == (DESTROY_FINALIZER in finalizers):
            return obj
        updated = [*finalizers, DESTROY_FINALIZER] if wanted else [f for f in finalizers if f != DESTROY_FINALIZER]
        return self._patch_finalizers(obj, updated) or obj

    def _patch_finalizers(self, obj: dict[str, Any], finalizers: list[str]) -> dict[str, Any] | None:
        metadata = obj["metadata"]
        try:
            patched = CustomObjectsApi(self.api).patch_namespaced_custom_object(
                API_GROUP, API_VERSION, metadata["namespace"], KIND.plural, metadata["name"],
                {"metadata": {"finalizers": finalizers, "resourceVersion": metadata.get("resourceVersion")}},
                _request_timeout=REQUEST_TIMEOUT)
            return patched if isinstance(patched, dict) else None
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _release(self, obj: dict[str, Any], event: tuple[str, str, str]) -> Outcome:
        """Remove the destroy finalizer: the API server then removes the object (and GC its children)."""
        self.drop_state_role(obj)
        post_event(self.api, obj, *event)  # type: ignore[arg-type]
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != DESTROY_FINALIZER]
        self._patch_finalizers(obj, finalizers)
        return Outcome.ready("Released", event[2], {}, ())

    def drop_state_role(self, obj: dict[str, Any]) -> None:
        """The runner's Role in a shared state namespace: not owned by the deployment (owners never cross
        namespaces), so removed where the deployment goes (released, or its DELETED event)."""
        state = (obj.get("status") or {}).get("state") or {}
        namespace = state.get("namespace")
        if not (self.runtime.config.runner_rbac and namespace and state.get("secretSuffix")
                and namespace != obj["metadata"]["namespace"]):
            return
        try:
            runner_rbac.delete_state_role(self.api, namespace, state["secretSuffix"])
        except ApiException as exc:  # best effort: it names only this deployment's state, which stays too
            logger.warning("could not delete the runner's state Role in %s: %s %s", namespace, exc.status, exc.reason)

    def _deletion(self, obj: dict[str, Any], spec: InfraDeploymentSpec | None, status: dict[str, Any],
                  invalid: str | None = None) -> Outcome:
        """A deletion with the destroy finalizer: destroy (approved like any plan), or abandon, never hang silently."""
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        me = key_of(namespace, name)
        if DESTROY_FINALIZER not in (metadata.get("finalizers") or []):
            return Outcome.reconciling("Deleting", "being deleted (no destroy finalizer: nothing to do)", "Destroying")
        deletion = dict(status.get("deletion") or {})
        deletion.setdefault("since", rfc3339())
        abandon_hint = annotate_command(namespace, name, ABANDON_ANNOTATION, "true")
        by = _annotation(obj, REQUESTED_BY_ANNOTATION)
        handled = dict(status.get("handled") or {})
        retry_asked = _annotation(obj, REPLAN_ANNOTATION)
        if retry_asked and retry_asked != handled.get("replan"):  # "try the destroy again now"
            handled["replan"] = retry_asked
            deletion["nextAttemptAt"] = None  # merge-patched: None removes it
            deletion["attempts"] = 0
        if _annotation(obj, ABANDON_ANNOTATION) == "true" or (spec is not None and not spec.destroy_on_delete):
            how = ABANDON_ANNOTATION if _annotation(obj, ABANDON_ANNOTATION) == "true" else "destroyOnDelete: false"
            recorded = self._record_abandon(obj, spec, by, f"deleted with {how}")
            text = (f"abandoned: deleted without destroying ({how}{f', by {by}' if by else ''}); the resources still "
                    f"exist in AWS{' and are listed under Abandoned in ' + recorded if recorded else ''}")
            return self._release(obj, ("Warning", "Abandoned", text))

        lock_fields: dict[str, Any] = {}  # the state lock, once the destroy's inputs are known
        lock_conds: list[tuple[str, str, str, str]] = []

        def blocked(reason: str, message: str, **extra: Any) -> Outcome:
            deletion.update(state="Blocked", reason=reason, message=f"{message}; to delete without destroying: "
                            f"`{abandon_hint}`", **extra)
            return Outcome("stalled", reason, deletion["message"], "DeletionBlocked",
                           {"deletion": deletion, "handled": handled, **lock_fields},
                           (("Deleting", "False", reason, deletion["message"]), *lock_conds))

        def waiting(state: str, reason: str, message: str, phase: str = "Destroying", **extra: Any) -> Outcome:
            deletion.update(state=state, reason=reason, message=message, **extra)
            return Outcome.reconciling(reason, message, phase, {"deletion": deletion, "handled": handled,
                                                                **lock_fields},
                                       (("Deleting", "True", reason, message), *lock_conds))

        if invalid is not None:
            return blocked("InvalidSpec", f"the spec is invalid ({invalid}): fix it so the destroy can be planned")
        assert spec is not None
        jobs = status.get("jobs") or {}
        if jobs.get("current") and jobs.get("step") in ("plan", "apply", "drift"):
            running = self._job(namespace, jobs["current"])
            if running is not None and observe(running).active:
                return waiting("WaitingForJob", "WaitingForJob", f"Job {jobs['current']} ({jobs['step']}) finishes "
                               "before the destroy is planned (they share the state lock)")
        # The runner writes the snapshot before it applies: no snapshot and no recorded apply, nothing to destroy.
        snapshot = status.get("inputsSnapshotSecret") or f"{name}-inputs"[:253]
        if not status.get("lastAppliedPlanId") and self._get(
                f"/api/v1/namespaces/{namespace}/secrets/{snapshot}") is None:
            return self._release(obj, ("Normal", "Deleted", "nothing was applied, so nothing is destroyed"))
        if spec.suspend:
            return blocked("Suspended", "spec.suspend is true: the destroy Job does not start; unset it")
        try:
            access = resolve_project(self.runtime, namespace, spec.project_ref, spec.environment)
        except ProjectRefError as exc:
            return blocked(exc.reason, f"the destroy cannot run: {exc}")
        self.by_project.setdefault(access.key, set()).add(me)  # a project change looks at the destroy again
        try:
            inputs = resolve(self.api, self.runtime.config, namespace, name, obj, spec.model_copy(
                update={"vars_from": []}), access, 0, rule=self.runtime.tenancy_rule(namespace))
        except InputError as exc:
            if exc.reason not in ("SourceNotFound", "SourceArtifactMissing", "GitCredentialsNotFound",
                                  "UnsafeSourceKey"):
                return blocked(exc.reason, f"the destroy cannot run: {exc}")
            # The source is gone with its namespace (or no longer fit to fetch): the snapshot Secret holds the
            # source as applied (a source too large to snapshot cannot be fetched, and the runner says so).
            snapshot_only = spec.source.model_copy(update={"config_map_ref": None, "source_ref": None, "git": None,
                                                           "inline": {"snapshot.tf": ""}})
            inputs = resolve(self.api, self.runtime.config, namespace, name, obj, spec.model_copy(update={
                "vars_from": [], "source": snapshot_only}), access, 0)
        if not (jobs.get("current") and jobs.get("step") in ("destroy", "apply")):
            # A stale lock fails the destroy: it is reported, and released as for any plan, here too.
            found_fields, found_conds = self._lock_check(obj, access, inputs, {**status, "handled": handled})
            lock_fields.update(found_fields)
            lock_conds.extend(found_conds)
        attempts = int(deletion.get("attempts") or 0)
        if deletion.get("nextAttemptAt") and _parse_time(deletion["nextAttemptAt"]) > datetime.now(UTC):
            self._wake_at(me, _parse_time(deletion["nextAttemptAt"]))
            return waiting("Retrying", "DestroyRetrying", f"destroy attempt {attempts + 1} starts at "
                           f"{deletion['nextAttemptAt']} (the last failed: {deletion.get('lastError', '')})")
        if attempts > spec.retry.max_attempts:  # retries used up: stays blocked until asked again (replan)
            again = annotate_command(namespace, name, REPLAN_ANNOTATION, "$(date +%s)")
            return blocked("DestroyFailed", f"the destroy failed {attempts} time(s): {deletion.get('lastError', '')}; "
                           f"fix the cause and try again with `{again}`")
        # What runs the destroy and as whom is bound as for any plan (deploy/inputs.py): the owner changing the
        # runner's image, a ServiceAccount or an identity while the destroy plan waits makes a new destroy plan
        # (a new Job, run with the new settings) and a new id, so an approval of the old one destroys nothing.
        basis = {"applied": status.get("lastAppliedPlanId"), "attempt": attempts, "retry": handled.get("replan"),
                 "runner": inputs.runner_digest}
        destroy_key = short_digest(basis)
        inputs.base.from_snapshot = True
        inputs.base.inputs_snapshot_secret = snapshot
        inputs.base.inputs_digest = f"destroy:{short_digest({'snapshot': snapshot, **basis})}"
        plan_job = job_name(name, "destroy", destroy_key)
        busy, result = self._destroy_job(obj, plan_job, "destroy", inputs, None, "planning the destroy",
                                         blocked, waiting)
        if busy is not None:
            return busy
        if not result.get("ok"):
            return self._destroy_failed(obj, spec, deletion, attempts, "destroy plan", plan_job, result, blocked,
                                        waiting)
        try:  # the destroy plan as its artefact says, as for any plan (never the runner's counts)
            verified = results.read_plan(self.api, namespace, inputs.base, result)
        except results.ResultError as exc:
            return blocked("PlanUnverified", f"destroy plan Job {plan_job} reported a plan the operator cannot "
                           f"check: {exc}")
        destroy_plan = results.computed_plan_id(verified, inputs.base, result)
        differences = results.plan_differences(result, verified, destroy_plan)
        if differences:  # looked at again on every reconciliation while it waits: one Event, then the condition
            lock_conds.append(results.condition(differences, f"destroy plan {destroy_plan}"))
            if not _has_condition_reason(obj, results.CONDITION, "Mismatch"):
                post_event(self.api, obj, "Warning", "RunnerResultMismatch", lock_conds[-1][3])
        deletion["planId"] = destroy_plan
        if verified.destroy + verified.replace == 0:
            return self._finish_destroy(obj, spec, f"destroy plan {destroy_plan} destroys nothing (the resources "
                                        "are already gone)")
        request = approvals.ApprovalRequest(
            subject="destroy plan", digest=destroy_plan, requested_at=_parse_time(deletion["since"]),
            production=access.production,
            auto_allowed=access.environment.auto_approve and spec.approval.mode == ApprovalMode.AUTO,
            expires_after=None, how_to_approve=approve_command(namespace, name, destroy_plan))
        decision = approvals.decide(request, approvals.GivenApproval(digest=spec.approval.plan_id,
                                                                     approved_by=spec.approval.approved_by),
                                    datetime.now(UTC))
        decision, policy = self._safeguard(obj, access, decision)
        if not decision.approved:
            lock_conds.extend((decision.condition(), *policy))
            text = f"destroy plan {destroy_plan} destroys {verified.destroy} resource(s): {decision.message}"
            if decision.refused:
                return blocked(decision.refused, text)
            return waiting("AwaitingApproval", "AwaitingApproval", text, phase="AwaitingApproval")
        apply_job = job_name(name, "apply", destroy_plan)
        existing = self._job(namespace, apply_job)
        if existing is None:
            held = self._held(obj, spec, access, "apply", f"destroy plan {destroy_plan} is approved")
            if held is not None:
                return waiting("WaitingForWindow", held.reason, held.message, phase=held.phase)
        plan = PlanStatus(id=destroy_plan, digest=verified.digest, request=destroy_key,
                          artifact_secret=result.get("artifactSecret"), artifact_sha256=result.get("artifactSha256"),
                          source_revision=result.get("sourceRevision"))
        busy, result = self._destroy_job(obj, apply_job, "apply", inputs, plan,
                                         f"destroying with plan {destroy_plan}", blocked, waiting, found=existing)
        if busy is not None:
            return busy
        if not result.get("ok"):
            return self._destroy_failed(obj, spec, deletion, attempts, "destroy", apply_job, result, blocked, waiting)
        return self._finish_destroy(obj, spec, f"destroyed with plan {destroy_plan}: "
                                    f"{result.get('resourceCount', 0)} resource(s) left in the state")

    def _destroy_job(self, obj: dict[str, Any], job: str, step: str, inputs: ResolvedInputs, plan: PlanStatus | None,
                     what: str, blocked: Any, waiting: Any, found: Any = UNREAD) -> tuple[Outcome | None,
                                                                                       dict[str, Any]]:
        """Start or look at one Job of a destroy: (the outcome while it runs, or None and its result when done)."""
        namespace = obj["metadata"]["namespace"]
        found = self._job(namespace, job) if found is UNREAD else found
        if found is None:
            try:
                self._create_job(job, inputs, step, obj, plan)
            except ApiException as exc:
                if exc.status == 403:  # e.g. the namespace is terminating: no new Job can be created there
                    return blocked("JobRefused", f"the destroy Job cannot be created ({exc.status} {exc.reason}: "
                                   f"{redact(str(exc.body or ''))[:300]})"), {}
                raise
        # The Ready condition's transition posts the Event: PlanningDestroy, then Destroying.
        reason = "PlanningDestroy" if step == "destroy" else "Destroying"
        message = (f"{what} in Job {job}, from the inputs snapshotted at apply time (Secret "
                   f"{inputs.base.inputs_snapshot_secret})")
        if found is None or observe(found).active:
            return waiting("Destroying", reason, message), {}
        seen = observe(found)
        result = self._result(namespace, job) or {}
        return None, ({**result, "ok": False} if seen.failed else result)

    def _destroy_failed(self, obj: dict[str, Any], spec: InfraDeploymentSpec, deletion: dict[str, Any],
                        attempts: int, what: str, job: str, result: dict[str, Any], blocked: Any,
                        waiting: Any) -> Outcome:
        error = redact(str(result.get("error") or "the runner Job failed without a result"))[:1500]
        attempts += 1
        deletion.update(attempts=attempts, lastError=error)
        category = result.get("category") or "unknown"
        fields_error = {"category": category, "message": error, "step": "destroy", "at": rfc3339()}
        post_event(self.api, obj, "Warning", "DestroyFailed", f"{what} Job {job} failed ({category}): {error}")
        if attempts <= spec.retry.max_attempts:
            at = datetime.now(UTC) + parse_duration(spec.retry.backoff) * (2 ** (attempts - 1))
            self._wake_at(key_of(obj["metadata"]["namespace"], obj["metadata"]["name"]), at)
            outcome: Outcome = waiting("Retrying", "DestroyRetrying", f"{what} failed ({category}): {error}; attempt "
                                       f"{attempts + 1} at {rfc3339(at)}", nextAttemptAt=rfc3339(at))
        else:
            deletion["nextAttemptAt"] = None  # merge-patched: None removes it
            again = annotate_command(obj["metadata"]["namespace"], obj["metadata"]["name"], REPLAN_ANNOTATION,
                                     "$(date +%s)")
            outcome = blocked("DestroyFailed", f"{what} failed {attempts} time(s) ({category}): {error}; fix the cause "
                              f"and try again with `{again}`")
        return Outcome(outcome.state, outcome.reason, outcome.message, outcome.phase,
                       {**outcome.fields, "lastError": fields_error}, outcome.domain_conditions)

    def _finish_destroy(self, obj: dict[str, Any], spec: InfraDeploymentSpec, message: str) -> Outcome:
        self._forget_in_registry(obj, spec)
        return self._release(obj, ("Normal", "Destroyed", message))

    def _registry_document(self, obj: dict[str, Any], spec: InfraDeploymentSpec | None) -> ConfigMapDocument | None:
        if spec is None:
            return None
        project_namespace = spec.project_ref.namespace or obj["metadata"]["namespace"]
        cm_name = registry.registry_name(spec.project_ref.name, spec.environment)
        if self._get(f"/api/v1/namespaces/{project_namespace}/configmaps/{cm_name}") is None:
            return None
        title = f"{spec.project_ref.name} / {spec.environment}"
        return ConfigMapDocument(self.api, project_namespace, cm_name, registry.REGISTRY_KEY,
                                 render=lambda doc: {registry.DEPLOYED_KEY: registry.render_deployed_md(doc,
                                                                                                      title=title)})

    def _forget_in_registry(self, obj: dict[str, Any], spec: InfraDeploymentSpec) -> None:
        document = self._registry_document(obj, spec)
        me = key_of(obj["metadata"]["namespace"], obj["metadata"]["name"])
        if document is not None:
            document.update(lambda doc: registry.forget_deployment(doc, me))

    def _record_abandon(self, obj: dict[str, Any], spec: InfraDeploymentSpec | None, by: str | None,
                        reason: str) -> str | None:
        document = self._registry_document(obj, spec)
        if document is None:
            return None
        me = key_of(obj["metadata"]["namespace"], obj["metadata"]["name"])
        document.update(lambda doc: registry.record_abandon(doc, deployment=me, at=rfc3339(), by=by, reason=reason))
        return f"ConfigMap {document.name}"

    # -- Jobs ---------------------------------------------------------------------------------------

    def _ensure_plan_key(self, obj: dict[str, Any]) -> None:
        """The deployment's plan-digest key Secret: 32 random bytes, created once, owned by the deployment.

        The runner folds sensitive values into the plan digest as HMACs under it (terraform/planjson.py): a
        plan differing only in a sensitive value gets another plan id, and nobody without the key can test
        a guess of a value against the digest in status. It is never rotated: the apply recomputes the plan
        id of the saved plan with it. Deleted with the deployment.
        """
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        secret = plan_key_secret(name)
        if self._get(f"/api/v1/namespaces/{namespace}/secrets/{secret}") is not None:
            return
        encoded = base64.b64encode(secrets.token_hex(32).encode()).decode()
        body = adopt({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": secret, "namespace": namespace},
                      "data": {PLAN_KEY_SECRET_KEY: encoded}}, obj)
        try:
            call_json(self.api, "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body, timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:  # made by another worker meanwhile: that key stands
                raise

    def _create_job(self, job: str, inputs: ResolvedInputs, step: str, obj: dict[str, Any],
                    plan: PlanStatus | None = None) -> None:
        self._ensure_plan_key(obj)
        # A copy: the same inputs go on to check the Job's result (the artefact prefix must stay the plan's).
        request = dataclasses.replace(inputs.base, step=step)
        if plan is not None:
            request.plan_id = plan.id
            request.plan_sha256 = plan.artifact_sha256
            request.source_revision = plan.source_revision
            request.artifact_secret = plan.artifact_secret
        settings = inputs.job_for(step)
        manifest = build_job(job, request, settings, obj)
        roles: list[dict[str, Any]] = []
        if self.runtime.config.runner_rbac:
            roles = runner_rbac.job_objects(request, job, settings.service_account,
                                            artifact_chunks=plan.artifact_chunks if plan is not None else None)
            runner_rbac.ensure_state_role(self.api, runner_rbac.state_objects(
                request, sorted({inputs.plan_job.service_account, inputs.job.service_account})))
            runner_rbac.create_for_job(self.api, roles, obj)
        path = f"/apis/batch/v1/namespaces/{request.namespace}/jobs"
        try:
            created = call_json(self.api, "POST", path, body=manifest, timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:  # already there: another worker created it first, which is the same Job
                raise
            created = None  # and that worker hands the Role to it, as it made the Role before the Job
        if roles and created:
            runner_rbac.hand_to_job(self.api, roles, created)

    def _active(self, obj: dict[str, Any], seen: JobObservation, step: str, inputs: ResolvedInputs,
                phase: str) -> Outcome:
        namespace = obj["metadata"]["namespace"]
        reason, exit_code, pod = self._pod_state(namespace, seen.name)
        if reason in IMAGE_PULL_REASONS:
            return self._job_failed(obj, seen, step, {}, override=("ImagePullBackOff", exit_code, pod))
        fields: dict[str, Any] = {"jobs": {"current": seen.name, "step": step, "startedAt": seen.start_time}}
        lock = self._lock_status(obj, inputs, seen.name, pod)
        if lock is not None:
            fields["lock"] = lock
        what = "planning" if step == "plan" else "applying"
        return Outcome.reconciling(phase, f"{what} in Job {seen.name}" + (f" (pod {pod})" if pod else ""), phase,
                                   fields)

    def _lock_status(self, obj: dict[str, Any], inputs: ResolvedInputs, job: str,
                     pod: str | None) -> dict[str, Any] | None:
        """status.lock while our Job runs: its own lock, or one it waits for (e.g. left by a killed runner)."""
        path = self._lease_path(inputs)
        held = backends.lock_from_lease(self._get(path)) if path else None
        if held is None:
            return None
        lock, _ = self._describe_lock(obj, held, (obj.get("status") or {}).get("lock") or {}, running=(job, pod))
        return lock

    def _job_failed(self, obj: dict[str, Any], seen: JobObservation, step: str, result: dict[str, Any],
                    override: tuple[str, int | None, str | None] | None = None) -> Outcome:
        namespace = obj["metadata"]["namespace"]
        reason, exit_code, pod = override or self._pod_state(namespace, seen.name)
        # A runner that never reported got a result written by _keep_log, with the kind found then (its pod may
        # be gone since): that kind stands (the result holds nothing else).
        kept = str(result["reason"]) if "step" not in result and result.get("reason") else None
        if kept:
            kind = kept
        elif seen.reason == "DeadlineExceeded":
            kind = "DeadlineExceeded"
        elif (pod is None or reason == POD_DELETED) and not result and override is None:
            kind = "PodDeleted"  # deleted, and stopped before it reported (a deleted pod goes once it stopped)
        elif reason == "OOMKilled":
            kind = "OOMKilled"
        elif exit_code == 137:  # SIGKILL without an OOM report: the node lost it, or someone killed it
            kind = "Killed"
        elif reason in IMAGE_PULL_REASONS:
            kind = "ImagePullBackOff"
        elif reason == "Evicted":
            kind = "Evicted"
        elif result.get("interrupted"):
            kind = "Interrupted"
        else:
            kind = "Error"
        log_secret = self._keep_log(obj, seen.name, kind, result)
        error = result.get("error") or {
            "OOMKilled": "the runner ran out of memory (OOMKilled, exit 137): raise spec.runner.resources.memory",
            "ImagePullBackOff": "the runner image cannot be pulled: the project owner fixes the DevOpsProject's "
                                "spec.environments[].runner.image or spec.terraform.runnerImage, or the registry "
                                "credentials",
            "DeadlineExceeded": "the runner Job exceeded its deadline: raise spec.runner.activeDeadlineSeconds",
            "Killed": "the runner was killed (SIGKILL, exit 137) before it could report: a state lock it held stays "
                      "held until released (see status.lock and the StaleLock condition), and resources the apply "
                      "created after Terraform last saved its state may exist in AWS without being in the state; "
                      "compare the registry with AWS (terraform import what is missing) before re-planning"
                      if step == "apply" else "the runner was killed (SIGKILL, exit 137) before it could report: a "
                      "state lock it held stays held until released (see status.lock and the StaleLock condition)",
            "PodDeleted": "the runner pod was deleted (kubectl delete pod, a node drain or an eviction) and stopped "
                          "before it reported (its grace period ran out, or it was force-deleted): a state lock it "
                          "held stays held until released (see status.lock and the StaleLock condition)"
                          + (", and resources the apply created after Terraform last saved its state may exist in "
                             "AWS without being in the state; compare the registry with AWS (terraform import what "
                             "is missing) before re-planning" if step == "apply" else ""),
        }.get(kind, f"the runner Job failed ({seen.message or kind}) without reporting a result")
        if not self._seen_failure(obj, seen.name):
            metrics.TERRAFORM_JOB_FAILURES.labels(step, kind).inc()
        fields: dict[str, Any] = {
            "jobs": {"current": None, "step": None, "startedAt": None,
                     "lastFailed": {"name": seen.name, "step": step, "reason": kind, "exitCode": exit_code,
                                    "logSecret": log_secret, "at": rfc3339()}},
            "lastError": {"category": result.get("category") or ("resource" if kind != "Error" else "unknown"),
                          "message": redact(str(error))[:2000], "step": step, "at": rfc3339()},
            "lock": None,
        }
        held_by = LOCK_ID.search(str(error)) if "state lock" in str(error).lower() else None
        if held_by:  # e.g. a replacement pod finding the lock its killed predecessor held
            error = (f"{error}; the lock is reported in status.lock (the StaleLock condition says when its holder is "
                     "gone); once nothing runs with it, release it with "
                     f"{annotate_command(namespace, obj['metadata']['name'], RELEASE_LOCK_ANNOTATION, held_by[1])}"
                     + ("; if its holder was an apply killed on the way (an earlier pod of this Job, say), resources "
                        "it created after Terraform last saved its state may exist in AWS without being in the "
                        "state: compare the registry with AWS (terraform import what is missing) before re-planning"
                        if step == "apply" else ""))
        if result.get("erroredStateSecret"):
            fields["erroredStateSecret"] = result["erroredStateSecret"]
            error = f"{error}; Terraform's errored.tfstate is kept in Secret {result['erroredStateSecret']}"
        condition = (PLANNED if step == "plan" else APPLIED, "False", "JobFailed", str(error))
        hint = (f" (log: kubectl -n {namespace} get secret {log_secret} -o jsonpath='{{.data.runner\\.log}}' "
                "| base64 -d)")
        if result.get("category") == "config":
            where = f"{result['field']}: " if result.get("field") and not str(error).startswith(result["field"]) else ""
            return Outcome.stalled("InvalidModule" if step == "plan" else "InvalidInput", f"{where}{error}{hint}",
                                   fields, (condition,))
        return _failed(f"{step.capitalize()}Failed", f"{step} Job {seen.name} failed ({kind}): {error}{hint}", fields,
                       (condition,))

    def _seen_failure(self, obj: dict[str, Any], job: str) -> bool:
        last = (((obj.get("status") or {}).get("jobs") or {}).get("lastFailed") or {})
        return bool(last.get("name") == job)

    def _keep_log(self, obj: dict[str, Any], job: str, kind: str, result: dict[str, Any]) -> str:
        """The result Secret keeps the runner's log after the pod is gone; a killed runner gets one written.

        A Secret like the runner's own (never a ConfigMap): whoever may read one may read the other."""
        namespace = obj["metadata"]["namespace"]
        name = result_name(job)
        if result:
            return name

        text = (f"the runner did not report ({kind}): it was killed or never started; its pod log is gone with "
                "its pod")
        body = adopt({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": name, "namespace": namespace},
                      "stringData": {RESULT_KEY: json.dumps({"ok": False, "reason": kind}), LOG_KEY: text}}, obj)
        try:
            call_json(self.api, "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body,
                      timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise
        return name

    # -- looking again -------------------------------------------------------------------------------

    @property
    def tick(self) -> float:
        return max(0.2, min(self.runtime.config.stalled_recheck_seconds, 30.0))

    def poll_delay(self, key: str, outcome: Outcome) -> float | None:
        """Seconds until the next poll of a deployment after this outcome, None for none; records waits.

        A running Job is looked at every tick for its lock's holder (status.lock) and an image that cannot be
        pulled. A deployment waiting for something outside it (WAITING_REASONS) is looked at on a back-off
        while the same reason holds: tick, 2x, up to 4x (a project not Ready yet from half of that: a project
        turning Ready should be noticed soon). Anything else waits for an event or a moment of its own.
        """
        delay = self.tick if outcome.phase in JOB_PHASES else None
        if outcome.reason in WAITING_REASONS:
            reason, waits = self.waits.get(key, ("", 0))
            waits = waits + 1 if reason == outcome.reason else 1
            self.waits[key] = (outcome.reason, waits)
            backoff = waiting_delay(waits, self.tick) / (2 if outcome.reason == "WaitingForProject" else 1)
            delay = backoff if delay is None else min(delay, backoff)
        else:
            self.waits.pop(key, None)
        return delay

    def _poll(self, key: str, outcome: Outcome) -> None:
        namespace, _, name = key.partition("/")
        delay = self.poll_delay(key, outcome)
        if delay is None:
            self.wakeups.cancel(KIND.kind, namespace, name, POLL)
        else:
            self.wakeups.schedule(KIND.kind, namespace, name, self.wakeups.clock() + delay, POLL)


def _summary_view(plan: PlanStatus) -> Any:
    """The plan as the gate's checks see it (a PlanSummary built from status)."""
    return PlanSummary(digest=plan.digest, changes=tuple(Change(c.address, "", "", str(c.action))
                                                         for c in plan.summary),
                       add=plan.add, change=plan.change, destroy=plan.destroy, replace=plan.replace,
                       terraform_version=None)


def _controller(memo: kopf.Memo) -> DeploymentController:
    controller: DeploymentController | None = memo.get("deployments")
    if controller is None:
        controller = DeploymentController(memo.runtime, memo.get("wakeups"))
        memo.deployments = controller
    return controller


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
def reconcile_deployment(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A spec change (or the operator's start): reconcile now; status is written by the controller."""
    assert namespace is not None
    _controller(memo).reconcile(namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def runner_job_changed(body: kopf.Body, namespace: str | None, type: str | None, memo: kopf.Memo,
                       **_: Any) -> None:
    """Jobs are watched, not polled: a runner Job's change reconciles the deployment that owns it."""
    deployment = (body.metadata.get("labels") or {}).get(DEPLOYMENT_LABEL)
    if deployment and namespace and type in ("ADDED", "MODIFIED", None):
        _controller(memo).reconcile(namespace, deployment)


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=lambda type, **_: type == "DELETED")
def forget_deployment(name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    controller = _controller(memo)
    controller.forget(namespace or "", name)
    # Without destroyOnDelete there is no finalizer, so this event is the operator's only sight of the end.
    controller.drop_state_role(dict(body))


def _deleting(type: str | None, body: kopf.Body, **_: Any) -> bool:
    return type != "DELETED" and bool(body.metadata.get("deletionTimestamp"))


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=_deleting)
def deployment_deleting(body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """kopf's change handlers do not run once deletion starts: the destroy finalizer's work is driven from here.

    Only a change that matters (the deletion itself, the spec, the annotations) reconciles: the status this
    writes comes back as an event too, and must not loop.
    """
    assert namespace is not None
    controller = _controller(memo)
    seen = short_digest({"generation": body.metadata.get("generation"),
                         "annotations": dict(body.metadata.get("annotations") or {}),
                         "finalizers": list(body.metadata.get("finalizers") or [])})
    key = key_of(namespace, name)
    if controller.deleting_seen.get(key) == seen:
        return
    controller.deleting_seen[key] = seen
    controller.reconcile(namespace, name)


@kopf.on.event("", "v1", "pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT},
               when=lambda type, **_: type == "DELETED")
def runner_pod_gone(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A runner pod gone: a lock it held is now stale (its holder no longer exists)."""
    deployment = (body.metadata.get("labels") or {}).get(DEPLOYMENT_LABEL)
    if deployment and namespace:
        _controller(memo).reconcile(namespace, deployment)
