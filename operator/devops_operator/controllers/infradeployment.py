"""InfraDeployment controller: plan → test → approve → apply → verify → register, in runner Jobs.

Thin by design: the decisions are pure (approvals.decide, planjson, registry, checks, jobs.job_name);
this module reads what exists (the deployment, its Jobs and their result ConfigMaps), decides the next
step, starts at most one Job for it, and writes status through `apply_outcome`.

Crash safety: Job names are deterministic per plan request (plan) and plan id (apply), and the controller
looks for the Job before creating one, so a restarted operator finds the apply it started instead of
starting another. Every path that writes status goes through one lock per deployment, so the kopf handler,
the Job watch and the background recheck never interleave their writes.

Waiting is quiet: a plan waiting for approval is an expected wait (no error, no retry loop); Jobs are
watched (their events reconcile the owner); a background task only re-looks at deployments that wait for
something outside them (a project becoming Ready, a ConfigMap created later) and expires approvals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator import approvals, metrics
from devops_operator.api.common import API_GROUP, API_VERSION, ApprovalState, ApprovalStatus, bounded
from devops_operator.api.devopsproject import KIND as PROJECT_KIND
from devops_operator.api.infradeployment import (
    KIND,
    ApprovalMode,
    InfraDeploymentSpec,
    OutputsStatus,
    PlanStatus,
    RegistryStatus,
)
from devops_operator.controllers.status import Outcome, apply_outcome
from devops_operator.deploy import checks, registry
from devops_operator.deploy.inputs import InputError, ResolvedInputs, resolve
from devops_operator.durations import parse_duration
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.conditions import rfc3339
from devops_operator.kube.events import post_event
from devops_operator.kube.redaction import redact
from devops_operator.kube.store import ConfigMapDocument, StoreError
from devops_operator.projectrefs import ProjectAccess, ProjectRefError, resolve_project
from devops_operator.runtime import Runtime
from devops_operator.terraform import backends
from devops_operator.terraform.jobs import DEPLOYMENT_LABEL, JobObservation, build_job, job_name, observe
from devops_operator.terraform.planjson import Change, StateResource, verify_applied
from devops_operator.terraform.request import LOG_KEY, RESULT_KEY, result_name

logger = logging.getLogger(__name__)

PLANNED, TESTED, APPLIED = "Planned", "Tested", "Applied"
JOB_PHASES = frozenset({"Planning", "Applying"})
IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
# Ready-condition reasons of deployments that wait for something outside them: the recheck looks again.
WAITING_REASONS = frozenset({"WaitingForProject", "SourceNotFound", "SourceArtifactMissing", "VariablesNotFound",
                             "GitCredentialsNotFound", "ProjectNotFound", "ProjectNotReady", "PolicyDenied"})


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


class DeploymentController:
    """Reconciles InfraDeployments; one instance per operator, shared by handlers and the recheck task."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.api = runtime.kube
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.waiting: dict[str, float] = {}  # key -> monotonic time last looked at
        self.pending_approvals: dict[str, datetime] = {}  # key -> requested at
        self.expiries: dict[str, datetime] = {}  # key -> when its pending approval expires
        # Deployments with a running Job: looked at every tick for the lock's holder (status.lock) only;
        # the Job's own changes arrive as events.
        self.jobs_running: dict[str, float] = {}

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        key = key_of(namespace, name)
        self.waiting.pop(key, None)
        self.jobs_running.pop(key, None)
        self.pending_approvals.pop(key, None)
        self.expiries.pop(key, None)
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
        found = self._get(f"/api/v1/namespaces/{namespace}/configmaps/{result_name(job)}")
        raw = ((found or {}).get("data") or {}).get(RESULT_KEY)
        return json.loads(raw) if raw else None

    def _pod_state(self, namespace: str, job: str) -> tuple[str | None, int | None, str | None]:
        """(reason, exit code, pod name) of the Job's runner container, as its pod reports it."""
        listing = call_json(self.api, "GET", f"/api/v1/namespaces/{namespace}/pods",
                            query={"labelSelector": f"job-name={job}"}, timeout=REQUEST_TIMEOUT) or {}
        for pod in listing.get("items") or []:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                state = status.get("state") or {}
                if "terminated" in state:
                    term = state["terminated"]
                    return term.get("reason"), term.get("exitCode"), pod["metadata"]["name"]
                if "waiting" in state:
                    return state["waiting"].get("reason"), None, pod["metadata"]["name"]
            return None, None, pod["metadata"]["name"]
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
                outcome = self.evaluate(obj)
                outcome = self._replan_now(obj, outcome)
            except ApiException as exc:
                outcome = Outcome.reconciling("ReconcileError", f"the Kubernetes API answered {exc.status} "
                                              f"{exc.reason}; retrying", "Pending")
            apply_outcome(self.api, KIND, obj, outcome)
            result["value"] = (metrics.Outcome.STALLED if outcome.state == "stalled" else
                               metrics.Outcome.SUCCESS if outcome.state == "ready" else metrics.Outcome.RETRY)
            if outcome.phase in JOB_PHASES:
                self.jobs_running[key] = time.monotonic()
            else:
                self.jobs_running.pop(key, None)
            if outcome.reason in WAITING_REASONS:
                # A project turning Ready wakes its deployments sooner than the recheck interval.
                self.waiting[key] = time.monotonic() - (self.tick / 2 if outcome.reason == "WaitingForProject" else 0)
            else:
                self.waiting.pop(key, None)
            if outcome.phase != "AwaitingApproval":
                self.pending_approvals.pop(key, None)
                self.expiries.pop(key, None)
            self._update_pending_gauge()

    def _replan_now(self, obj: dict[str, Any], outcome: Outcome) -> Outcome:
        """A stale or expired plan: start the new plan in the same reconciliation (no event would come)."""
        replans = outcome.fields.get("replans")
        if replans is None or replans == (obj.get("status") or {}).get("replans"):
            return outcome
        status = {**(obj.get("status") or {}), "replans": replans, "approval": None}
        follow = self.evaluate({**obj, "status": status})
        return Outcome(follow.state, outcome.reason, f"{outcome.message}; {follow.message}", follow.phase,
                       {**outcome.fields, **follow.fields},
                       (*outcome.domain_conditions, *follow.domain_conditions))

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
            return Outcome.stalled("InvalidSpec", problems)
        try:
            access = resolve_project(self.runtime, namespace, spec.project_ref, spec.environment)
        except ProjectRefError as exc:
            if exc.waiting:
                return Outcome.reconciling("WaitingForProject", str(exc), "Pending")
            return Outcome.stalled(exc.reason, str(exc))
        replans = int(status.get("replans") or 0)
        try:
            inputs = resolve(self.api, self.runtime.config, namespace, name, obj, spec, access, replans)
        except InputError as exc:
            return Outcome.stalled(exc.reason, str(exc))
        plan = status.get("plan") or {}
        if plan.get("request") != inputs.request_key:
            return self._plan_step(obj, spec, access, inputs, status)
        return self._gate(obj, spec, access, inputs, status, PlanStatus.model_validate(plan))

    def _plan_step(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess,
                   inputs: ResolvedInputs, status: dict[str, Any]) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        job = job_name(name, "plan", inputs.request_key)
        found = self._job(namespace, job)
        if found is None:
            self._create_job(job, inputs, "plan", obj)
            return Outcome.reconciling("Planning", f"planning in Job {job}", "Planning",
                                       {"jobs": {"current": job, "step": "plan", "startedAt": rfc3339()},
                                        "approval": None},
                                       ((PLANNED, "False", "Planning", f"Job {job} is planning"),))
        seen = observe(found)
        if seen.active:
            return self._active(obj, seen, "plan", inputs, "Planning")
        result = self._result(namespace, job) or {}
        if seen.failed or not result.get("ok"):
            return self._job_failed(obj, seen, "plan", result)
        metrics.TERRAFORM_PLAN_DURATION.labels(result.get("engine") or "unknown").observe(
            float(result.get("durationSeconds") or 0))
        changes = [Change(c["address"], c.get("type", ""), c["address"].rsplit(".", 1)[-1], c["action"])
                   for c in result.get("changes") or []]
        summary, truncated = bounded(PlanStatus, "summary", [{"address": c.address, "action": c.action}
                                                             for c in changes])
        plan = PlanStatus(
            id=result["planId"], digest=result["planDigest"], inputs_digest=inputs.digest,
            generation=obj["metadata"].get("generation"), source_revision=result.get("sourceRevision"),
            add=result.get("add", 0), change=result.get("change", 0), destroy=result.get("destroy", 0),
            replace=result.get("replace", 0), summary=summary,
            summary_truncated=truncated or int(result.get("changesTotal") or 0) > len(changes),
            created_at=rfc3339(), artifact_secret=result.get("artifactSecret"),
            artifact_chunks=result.get("artifactChunks"), artifact_sha256=result.get("artifactSha256"),
            request=inputs.request_key, engine=result.get("engine"),
        )
        for action in ("add", "change", "destroy", "replace"):
            metrics.TERRAFORM_PLANNED_RESOURCES.labels(namespace, name, action).set(getattr(plan, action))
        described = f"{plan.add} to add, {plan.change} to change, {plan.destroy} to destroy, {plan.replace} to replace"
        post_event(self.api, obj, "Normal", "Planned", f"plan {plan.id} by {plan.engine}: {described}")
        status["plan"] = plan.to_wire()
        status["engine"] = plan.engine
        status["sourceRevision"] = plan.source_revision
        return self._gate(obj, spec, access, inputs, status, plan, fresh=True)

    def _gate(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess, inputs: ResolvedInputs,
              status: dict[str, Any], plan: PlanStatus, fresh: bool = False) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        fields: dict[str, Any] = {"plan": plan.to_wire(), "engine": plan.engine, "sourceRevision": plan.source_revision,
                                  "jobs": {"current": None, "step": None, "startedAt": None}} if fresh else {}
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
            return Outcome.ready("Applied", f"plan {plan.id} is applied ({status.get('resourceCount', 0)} resources)",
                                 fields, (planned, tested))
        if plan.add + plan.change + plan.destroy + plan.replace == 0:
            return Outcome.ready("UpToDate", f"plan {plan.id}: no changes, the infrastructure matches the module",
                                 fields, (planned, tested, (APPLIED, "True", "NoChanges", "nothing to apply")))
        decision, request = self._decide(obj, spec, access, plan, status)
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
                self.expiries[key_of(namespace, name)] = decision.expires_at
            return Outcome.reconciling("AwaitingApproval", decision.message, "AwaitingApproval", fields,
                                       (planned, tested, approved))
        return self._apply_step(obj, spec, inputs, status, plan, fields, (planned, tested, approved))

    def _decide(self, obj: dict[str, Any], spec: InfraDeploymentSpec, access: ProjectAccess, plan: PlanStatus,
                status: dict[str, Any]) -> tuple[approvals.ApprovalDecision, approvals.ApprovalRequest]:
        mode = spec.approval.mode
        destructive = plan.destroy > 0 or plan.replace > 0
        auto = access.environment.auto_approve and (
            mode == ApprovalMode.AUTO or (mode == ApprovalMode.NON_DESTRUCTIVE and not destructive))
        expires = parse_duration(spec.approval.expires_after) if spec.approval.expires_after else None
        request = approvals.ApprovalRequest(
            subject="plan", digest=plan.id, requested_at=_parse_time(plan.created_at), production=access.production,
            auto_allowed=auto, expires_after=expires,
            how_to_approve=approve_command(obj["metadata"]["namespace"], obj["metadata"]["name"], plan.id),
        )
        given = approvals.GivenApproval(digest=spec.approval.plan_id, approved_by=spec.approval.approved_by)
        return approvals.decide(request, given, datetime.now(UTC)), request

    def _apply_step(self, obj: dict[str, Any], spec: InfraDeploymentSpec, inputs: ResolvedInputs,
                    status: dict[str, Any], plan: PlanStatus, fields: dict[str, Any],
                    conds: tuple[tuple[str, str, str, str], ...]) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        job = job_name(name, "apply", plan.id)
        found = self._job(namespace, job)
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
            message = (f"plan {plan.id} is stale ({result.get('error')}): it is made again and needs a new approval; "
                       "nothing was applied")
            post_event(self.api, obj, "Warning", "StalePlan", message)
            return Outcome.reconciling("StalePlan", message, "Planning", fields, conds)
        if seen.failed or not result.get("ok"):
            failed = self._job_failed(obj, seen, "apply", result)
            return Outcome(failed.state, failed.reason, failed.message, failed.phase, {**fields, **failed.fields},
                           (*conds, *failed.domain_conditions))
        return self._verify_and_register(obj, spec, inputs, status, plan, result, fields, conds)

    def _verify_and_register(self, obj: dict[str, Any], spec: InfraDeploymentSpec, inputs: ResolvedInputs,
                             status: dict[str, Any], plan: PlanStatus, result: dict[str, Any],
                             fields: dict[str, Any], conds: tuple[tuple[str, str, str, str], ...]) -> Outcome:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        metrics.TERRAFORM_APPLY_DURATION.labels(result.get("engine") or "unknown").observe(
            float(result.get("durationSeconds") or 0))
        resources = [StateResource(**r) for r in result.get("resources") or []]
        plan_result = self._result(namespace, job_name(name, "plan", plan.request or "")) or {}
        changes = [Change(c["address"], c.get("type", ""), "", c["action"]) for c in plan_result.get("changes") or []]
        verification = verify_applied(changes, resources)
        access_key = (spec.project_ref.namespace or namespace, spec.project_ref.name)
        try:
            registry_status = self._register(obj, access_key, spec.environment, resources, changes, plan)
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
            "resourceCount": result.get("resourceCount", len(resources)),
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
        post_event(self.api, obj, "Normal", "Applied", f"plan {plan.id} applied: {result.get('resourceCount', 0)} "
                   f"resources; registry {registry_status['configMapName']}")
        if not verification.passed:
            return _failed("VerificationFailed", f"plan {plan.id} was applied, but {verification.describe()}",
                           fields, (*conds, applied))
        message = (f"plan {plan.id} applied and verified: {verification.describe()}; resources in ConfigMap "
                   f"{registry_status['configMapName']} (DEPLOYED.md)")
        return Outcome.ready("Applied", message, fields, (*conds, applied))

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
            conflicts_truncated=cut,
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

    # -- Jobs ---------------------------------------------------------------------------------------

    def _create_job(self, job: str, inputs: ResolvedInputs, step: str, obj: dict[str, Any],
                    plan: PlanStatus | None = None) -> None:
        request = inputs.base
        request.step = step
        if plan is not None:
            request.plan_id = plan.id
            request.plan_sha256 = plan.artifact_sha256
            request.source_revision = plan.source_revision
            request.artifact_secret = plan.artifact_secret
        manifest = build_job(job, request, inputs.job, obj)
        try:
            call_json(self.api, "POST", f"/apis/batch/v1/namespaces/{request.namespace}/jobs", body=manifest,
                      timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:  # already there: another worker created it first, which is the same Job
                raise

    def _active(self, obj: dict[str, Any], seen: JobObservation, step: str, inputs: ResolvedInputs,
                phase: str) -> Outcome:
        namespace = obj["metadata"]["namespace"]
        reason, exit_code, pod = self._pod_state(namespace, seen.name)
        if reason in IMAGE_PULL_REASONS:
            return self._job_failed(obj, seen, step, {}, override=("ImagePullBackOff", exit_code, pod))
        fields: dict[str, Any] = {"jobs": {"current": seen.name, "step": step, "startedAt": seen.start_time}}
        lock = self._lock_status(inputs, seen.name, pod)
        if lock is not None:
            fields["lock"] = lock
        what = "planning" if step == "plan" else "applying"
        return Outcome.reconciling(phase, f"{what} in Job {seen.name}" + (f" (pod {pod})" if pod else ""), phase,
                                   fields)

    def _lock_status(self, inputs: ResolvedInputs, job: str, pod: str | None) -> dict[str, Any] | None:
        config = (inputs.base.backend_override.get("terraform", {}).get("backend", {}).get("kubernetes"))
        if not config:
            return None
        lease = self._get(f"/apis/coordination.k8s.io/v1/namespaces/{config['namespace']}/leases/"
                          f"{backends.lock_lease_name(config['secret_suffix'])}")
        held = backends.lock_from_lease(lease)
        if held is None:
            return None
        holder_pod = held.who.split("@", 1)[-1] if held.who and "@" in held.who else pod
        return {"id": held.id, "operation": held.operation, "who": held.who, "holderJob": job,
                "holderPod": holder_pod, "since": held.created, "stale": False}

    def _job_failed(self, obj: dict[str, Any], seen: JobObservation, step: str, result: dict[str, Any],
                    override: tuple[str, int | None, str | None] | None = None) -> Outcome:
        namespace = obj["metadata"]["namespace"]
        reason, exit_code, _pod = override or self._pod_state(namespace, seen.name)
        if seen.reason == "DeadlineExceeded":
            kind = "DeadlineExceeded"
        elif reason == "OOMKilled" or exit_code == 137:
            kind = "OOMKilled"
        elif reason in IMAGE_PULL_REASONS:
            kind = "ImagePullBackOff"
        elif reason == "Evicted":
            kind = "Evicted"
        elif result.get("interrupted"):
            kind = "Interrupted"
        else:
            kind = "Error"
        log_map = self._keep_log(obj, seen.name, kind, result)
        error = result.get("error") or {
            "OOMKilled": "the runner ran out of memory (OOMKilled, exit 137): raise spec.runner.resources.memory",
            "ImagePullBackOff": "the runner image cannot be pulled: fix spec.runner.image or the project's "
                                "terraform.runnerImage, or the registry credentials",
            "DeadlineExceeded": "the runner Job exceeded its deadline: raise spec.runner.activeDeadlineSeconds",
        }.get(kind, f"the runner Job failed ({seen.message or kind}) without reporting a result")
        if not self._seen_failure(obj, seen.name):
            metrics.TERRAFORM_JOB_FAILURES.labels(step, kind).inc()
        fields: dict[str, Any] = {
            "jobs": {"current": None, "step": None, "startedAt": None,
                     "lastFailed": {"name": seen.name, "step": step, "reason": kind, "exitCode": exit_code,
                                    "logConfigMap": log_map, "at": rfc3339()}},
            "lastError": {"category": result.get("category") or ("resource" if kind != "Error" else "unknown"),
                          "message": redact(str(error))[:2000], "step": step, "at": rfc3339()},
            "lock": None,
        }
        if result.get("erroredStateSecret"):
            fields["erroredStateSecret"] = result["erroredStateSecret"]
            error = f"{error}; Terraform's errored.tfstate is kept in Secret {result['erroredStateSecret']}"
        condition = (PLANNED if step == "plan" else APPLIED, "False", "JobFailed", str(error))
        hint = f" (log: kubectl -n {namespace} get configmap {log_map} -o jsonpath='{{.data.runner\\.log}}')"
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
        """The result ConfigMap keeps the runner's log after the pod is gone; a killed runner gets one written."""
        namespace = obj["metadata"]["namespace"]
        name = result_name(job)
        if result:
            return name
        from devops_operator.kube.owners import adopt

        text = (f"the runner did not report ({kind}): it was killed or never started; its pod log is gone with "
                "its pod")
        body = adopt({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                      "data": {RESULT_KEY: json.dumps({"ok": False, "reason": kind}), LOG_KEY: text}}, obj)
        try:
            call_json(self.api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body,
                      timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise
        return name

    # -- background ---------------------------------------------------------------------------------

    @property
    def tick(self) -> float:
        return max(0.2, min(self.runtime.config.stalled_recheck_seconds, 30.0))

    def due(self, now: float) -> list[str]:
        """Deployments to look at again: those waiting for something outside them, and expired approvals.

        Jobs are watched, so nothing that only waits for a Job is polled; a plan waiting for a person is looked
        at again only once its expiresAfter has passed (an approval is a spec change, which kopf delivers).
        """
        keys = [k for k, at in list(self.waiting.items()) if now - at >= self.tick]
        keys += [k for k, at in list(self.jobs_running.items()) if now - at >= self.tick and k not in keys]
        wall = datetime.now(UTC)
        keys += [k for k, expires in list(self.expiries.items()) if expires <= wall and k not in keys]
        return keys

    async def run(self) -> None:
        """Re-look at deployments waiting for something outside them; keep the pending-approval age current."""
        while True:
            await asyncio.sleep(min(self.tick, 0.5))
            for key in self.due(time.monotonic()):
                namespace, _, name = key.partition("/")
                try:
                    await asyncio.to_thread(self.reconcile, namespace, name)
                except Exception as exc:  # one deployment's failure must not stop the others' rechecks
                    logger.warning("recheck of InfraDeployment %s failed: %s", key, redact(str(exc)))
            self._update_pending_gauge()


def _summary_view(plan: PlanStatus) -> Any:
    """The plan as the gate's checks see it (a PlanSummary built from status)."""
    from devops_operator.terraform.planjson import PlanSummary

    return PlanSummary(digest=plan.digest, changes=tuple(Change(c.address, "", "", str(c.action))
                                                         for c in plan.summary),
                       add=plan.add, change=plan.change, destroy=plan.destroy, replace=plan.replace,
                       terraform_version=None)


def _controller(memo: kopf.Memo) -> DeploymentController:
    controller: DeploymentController | None = memo.get("deployments")
    if controller is None:
        controller = DeploymentController(memo.runtime)
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
def forget_deployment(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    _controller(memo).forget(namespace or "", name)

