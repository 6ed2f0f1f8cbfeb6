"""Driving one Remediation: assess → approve → act exactly once → verify → roll back → log.

Everything the remediation has done lives in its status, and every step starts from a fresh read of the
object, so the same function serves kopf's handlers, the wake-ups (verification delay, approval expiry)
and an operator that restarted in the middle:

- Before AWS is called, the intent (an id, what will be sent, the state before) is written to status with
  the resourceVersion it was read at: of two writers, one wins and the other re-reads.
- A step that finds an intent without a completion does not act again: it reads the resource and asks
  the executor whether the intended change is there (`confirm`). Applied: it carries on from there. Not
  applied (the call never reached AWS): it acts, for the first time. Cannot tell: it stops, Failed, and
  says why: acting twice is worse than asking a person.
- Status is written with `apply_outcome` (directly, not through kopf's patch), so what was recorded is
  stored before the next AWS call is made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator import admission, approvals, metrics
from devops_operator.api.actions import spec_of
from devops_operator.api.common import API_GROUP, API_VERSION, ApprovalStatus, ResourceType
from devops_operator.api.devopsproject import KIND as PROJECT_KIND
from devops_operator.api.healthcheck import Verdict, parse_rfc3339
from devops_operator.api.remediation import (
    KIND,
    ActionResult,
    ImpactAssessment,
    RemediationPhase,
    RemediationSpec,
    RollbackInfo,
    VerificationResult,
)
from devops_operator.aws.errors import AwsConfigurationError, ProjectNotVerifiedError, classify
from devops_operator.aws.executors import (
    EXECUTORS,
    RESOURCES,
    Applied,
    CannotPlan,
    Described,
    Executor,
    ResourceAdapter,
    Target,
    TargetNotFound,
)
from devops_operator.controllers.status import Outcome, apply_outcome
from devops_operator.digests import short_digest
from devops_operator.durations import parse_duration
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import rfc3339
from devops_operator.ops import registry_view
from devops_operator.ops.remediation import log as remediation_log
from devops_operator.ops.remediation import ownership, verification
from devops_operator.ops.remediation.assessment import approve_command, assess
from devops_operator.ops.remediation.health import first_check_at, read_target_health
from devops_operator.projectrefs import ProjectAccess, ProjectRefError, resolve_project
from devops_operator.projects import field_path
from devops_operator.runtime import Runtime

TERMINAL = frozenset({RemediationPhase.SUCCEEDED.value, RemediationPhase.ROLLED_BACK.value,
                      RemediationPhase.FAILED.value, RemediationPhase.ASSESSED.value})
VERIFIED = "Verified"
# What boto3 raises: classified into a category and a fix. Anything else is a bug and propagates (kopf retries).
AWS_ERRORS = (BotoCoreError, ClientError)
# An AWS failure that may pass (throttling, 5xx after botocore's own retries) is tried again this much later.
AWS_RETRY = timedelta(seconds=30)

INVALID_SPEC = "InvalidSpec"
UNSUPPORTED_ACTION = "UnsupportedAction"
TARGET_NOT_FOUND = "TargetNotFound"
OUTSIDE_PROJECT = "OutsideProject"
CANNOT_PLAN = "CannotPlan"
AWS_ERROR = "AwsError"
AWS_UNREACHABLE = "AwsUnreachable"

_locks: dict[str, threading.Lock] = {}
_awaiting: set[tuple[str, str]] = set()  # waiting for an approval: looked at again when the policies change
_locks_guard = threading.Lock()


def _lock(key: str) -> threading.Lock:
    # Handlers and wake-ups run on different threads: one object is advanced by one of them at a time.
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def forget(namespace: str, name: str) -> None:
    with _locks_guard:
        _locks.pop(f"{namespace}/{name}", None)
        _awaiting.discard((namespace, name))


@dataclass
class Context:
    runtime: Runtime
    obj: dict[str, Any]
    spec: RemediationSpec
    access: ProjectAccess
    clock: Callable[[], datetime]
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"].get("uid") or f"{self.namespace}/{self.name}")

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.obj.get("status") or {})

    def target(self) -> Target:
        t = self.spec.target
        return Target(type=ResourceType(t.type), id=t.id, cluster=t.cluster, alias=t.alias)

    def adapter(self) -> ResourceAdapter:
        return RESOURCES[self.target().type]

    def executor(self, action: str | None = None) -> Executor:
        return EXECUTORS[(str(action or self.spec.action), self.target().type)]

    def client(self) -> Any:
        return self.runtime.aws.client(self.access.key, self.spec.environment, self.adapter().service,
                                       region=self.spec.target.region)


def _read(runtime: Runtime, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj = CustomObjectsApi(runtime.kube).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, KIND.plural, name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    assert isinstance(obj, dict)
    return obj


def _fields(status: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("impact", "approval", "actionResult", "verification", "rollback", "logConfigMap")
    return {key: status[key] for key in keep if key in status}


def _write(ctx: Context, outcome: Outcome, *, precondition: bool = False) -> None:
    version = ctx.obj["metadata"].get("resourceVersion") if precondition else None
    written = apply_outcome(ctx.runtime.kube, KIND, ctx.obj, outcome, resource_version=version)
    ctx.obj["status"] = written
    waiting = outcome.phase == RemediationPhase.AWAITING_APPROVAL
    metrics.REMEDIATION_AWAITING_APPROVAL.labels(ctx.namespace, ctx.name).set(1 if waiting else 0)
    with _locks_guard:
        if waiting:
            _awaiting.add((ctx.namespace, ctx.name))
        else:
            _awaiting.discard((ctx.namespace, ctx.name))
    if precondition:
        fresh = _read(ctx.runtime, ctx.namespace, ctx.name)
        if fresh is not None:
            ctx.obj = fresh


def _outcome(ctx: Context, state: str, reason: str, message: str, phase: RemediationPhase,
             *conditions: tuple[str, str, str, str]) -> Outcome:
    return Outcome(state, reason, message, phase.value, dict(ctx.fields), tuple(conditions))


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


# --- entry point --------------------------------------------------------------------------------------


def advance(runtime: Runtime, namespace: str, name: str, *,
            clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Take the Remediation as far as it can go now; returns when to look again (epoch seconds), if ever."""
    with _lock(f"{namespace}/{name}"):
        obj = _read(runtime, namespace, name)
        if obj is None:
            return None
        return _advance(runtime, obj, clock)


UNDER_WAY = frozenset({RemediationPhase.ACTING.value, RemediationPhase.VERIFYING.value,
                       RemediationPhase.ROLLING_BACK.value})


def _advance(runtime: Runtime, obj: dict[str, Any], clock: Callable[[], datetime]) -> float | None:
    status = dict(obj.get("status") or {})
    phase = status.get("phase")
    if phase in TERMINAL:
        _acknowledge_terminal(runtime, obj)
        return None
    under_way = phase in UNDER_WAY
    try:
        spec = RemediationSpec.model_validate(dict(obj.get("spec") or {}))
        access = resolve_project(runtime, str(obj["metadata"]["namespace"]), spec.project_ref, spec.environment)
    except (ValidationError, ProjectRefError) as exc:
        return _cannot_continue(runtime, obj, exc, under_way)
    if under_way:
        spec = _as_acted(spec, status)
    ctx = Context(runtime, obj, spec, access, clock, _fields(status))
    try:
        if phase == RemediationPhase.ACTING:
            return _resume_action(ctx)
        if phase == RemediationPhase.VERIFYING:
            return _verify(ctx)
        if phase == RemediationPhase.ROLLING_BACK:
            return _resume_rollback(ctx)
        return _assess(ctx)
    except ProjectNotVerifiedError as exc:
        _write(ctx, _outcome(ctx, "reconciling", "ProjectNotReady", str(exc),
                             _phase_or(ctx, RemediationPhase.PENDING)))
        return time.time() + runtime.config.stalled_recheck_seconds
    except AwsConfigurationError as exc:
        _write(ctx, _outcome(ctx, "stalled", AWS_ERROR, str(exc), _phase_or(ctx, RemediationPhase.STALLED)))
        return None


def _cannot_continue(runtime: Runtime, obj: dict[str, Any], exc: ValidationError | ProjectRefError,
                     under_way: bool) -> float | None:
    """An invalid spec or an unusable project: Stalled before acting; once acting, a wait in the same phase
    (going back to an earlier phase would assess, and act, again)."""
    status = dict(obj.get("status") or {})
    if isinstance(exc, ValidationError):
        reason = INVALID_SPEC
        message = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
    else:
        reason, message = exc.reason, str(exc)
    recheck = time.time() + runtime.config.stalled_recheck_seconds
    if under_way:
        message = f"{message} (the action already taken is carried on once this is fixed)"
        apply_outcome(runtime.kube, KIND, obj, Outcome.reconciling(reason, message, str(status.get("phase")),
                                                                    _fields(status)))
        return recheck
    if isinstance(exc, ProjectRefError) and not exc.stalled:
        apply_outcome(runtime.kube, KIND, obj, Outcome.reconciling(reason, message, "Pending", _fields(status)))
        return recheck
    apply_outcome(runtime.kube, KIND, obj, Outcome.stalled(reason, message, _fields(status)))
    # A refusal by policy is Stalled, and looked at again: a grant added later lets it go on.
    return recheck if isinstance(exc, ProjectRefError) and exc.waiting else None


def _as_acted(spec: RemediationSpec, status: Mapping[str, Any]) -> RemediationSpec:
    """The spec with the target, action and parameters that were acted on (status.actionResult): an edit
    after acting must not change what is confirmed, verified or rolled back."""
    try:
        result = ActionResult.model_validate(status.get("actionResult") or {})
    except ValidationError:
        return spec
    acted = {key: value for key, value in (("target", result.target), ("action", result.action),
                                            ("parameters", result.parameters)) if value is not None}
    return spec.model_copy(update=acted)


def _phase_or(ctx: Context, default: RemediationPhase) -> RemediationPhase:
    """Once an action is under way its phase stays (it is resumed); before that, the default."""
    phase = ctx.status.get("phase")
    if phase in (RemediationPhase.ACTING, RemediationPhase.VERIFYING, RemediationPhase.ROLLING_BACK):
        return RemediationPhase(phase)
    return default


def _acknowledge_terminal(runtime: Runtime, obj: dict[str, Any]) -> None:
    """An ended remediation never acts again; a later spec change is acknowledged, nothing more."""
    status = dict(obj.get("status") or {})
    generation = obj["metadata"].get("generation")
    if status.get("observedGeneration") == generation:
        return None
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    state = "ready" if ready.get("status") == "True" else "stalled"
    message = (f"this remediation ended {status.get('phase')} and never acts again; the spec change is not "
               f"acted on: create a new Remediation to act again ({status.get('message')})")
    apply_outcome(runtime.kube, KIND, obj, Outcome(state, str(ready.get("reason") or status.get("phase")), message,
                                                    str(status.get("phase")), _fields(status)))
    return None


# --- assessment and approval -------------------------------------------------------------------------------


def _aws_failure(ctx: Context, exc: BaseException, doing: str) -> float | None:
    failure = classify(exc)
    message = f"{doing}: {failure.summary}: {failure.fix}"
    if failure.retryable:
        _write(ctx, _outcome(ctx, "reconciling", AWS_UNREACHABLE, message, _phase_or(ctx, RemediationPhase.ASSESSING)))
        return _epoch(ctx.clock() + AWS_RETRY)
    _write(ctx, _outcome(ctx, "stalled", AWS_ERROR, message, _phase_or(ctx, RemediationPhase.STALLED)))
    # Once acting, what was started must be finished: looked at again after the fix (an IAM grant) is made.
    return time.time() + ctx.runtime.config.stalled_recheck_seconds if ctx.status.get("phase") in UNDER_WAY else None


def _owned(ctx: Context, client: Any) -> tuple[Described, str] | None:
    """The target's description and why it is the referring namespace's; None (written Stalled) when not."""
    target = ctx.target()
    names = {target.id, target.name}
    same_namespace = ctx.namespace == ctx.access.namespace
    registry = registry_view.registry_resources(ctx.runtime.kube, ctx.namespace, ctx.access.name,
                                                ctx.access.namespace, ctx.spec.environment)
    found = ownership.without_aws(target.type, sorted(names), ctx.access.spec, ctx.access.name,
                                  ctx.spec.environment, registry, same_namespace=same_namespace)
    described = ctx.adapter().describe(client, target)
    if found is None and same_namespace:  # tags are the project's and anyone may tag: its own namespace only
        by_tags = ownership.by_tags(ctx.adapter().tags(client, described), ctx.access.spec, ctx.access.name,
                                    ctx.spec.environment)
        found = by_tags if by_tags.belongs else None
    if found is None:
        message = ownership.refusal(target.type.value, target.id, ctx.access.spec, ctx.access.key, ctx.access.name,
                                    ctx.spec.environment, same_namespace=same_namespace)
        _write(ctx, _outcome(ctx, "stalled", OUTSIDE_PROJECT, message, RemediationPhase.STALLED))
        return None
    return described, found.how


def _previous_impact(ctx: Context) -> ImpactAssessment | None:
    raw = ctx.status.get("impact")
    try:
        return ImpactAssessment.model_validate(raw) if raw else None
    except ValidationError:
        return None


def _previous_approval(ctx: Context) -> ApprovalStatus | None:
    raw = ctx.status.get("approval")
    try:
        return ApprovalStatus.model_validate(raw) if raw else None
    except ValidationError:
        return None


def _assess(ctx: Context) -> float | None:
    if (str(ctx.spec.action), ctx.target().type) not in EXECUTORS:
        supported = ", ".join(sorted(spec_of(ctx.spec.action).resource_types))
        _write(ctx, _outcome(ctx, "stalled", UNSUPPORTED_ACTION,
                             f"spec.action: {ctx.spec.action} does not apply to {ctx.target().type} (only {supported})",
                             RemediationPhase.STALLED))
        return None
    client = ctx.client()
    try:
        owned = _owned(ctx, client)
        if owned is None:
            return None
        described, how = owned
        state = ctx.executor().read(client, ctx.target(), described)
        plan = ctx.executor().plan(client, state, ctx.spec.parameters, ctx.target())
    except TargetNotFound as exc:
        region = ctx.spec.target.region or ctx.access.environment.region or ctx.access.spec.aws.region
        _write(ctx, _outcome(ctx, "stalled", TARGET_NOT_FOUND,
                             f"spec.target: {exc} (region {region}): fix the target, or create the resource; "
                             "nothing was done", RemediationPhase.STALLED))
        return None
    except CannotPlan as exc:
        if exc.waiting:
            _write(ctx, _outcome(ctx, "reconciling", CANNOT_PLAN, str(exc), RemediationPhase.ASSESSING))
            return time.time() + ctx.runtime.config.stalled_recheck_seconds
        _write(ctx, _outcome(ctx, "stalled", CANNOT_PLAN, f"{exc}; nothing was done", RemediationPhase.STALLED))
        return None
    except AWS_ERRORS as exc:
        return _aws_failure(ctx, exc, "reading the target")

    now = ctx.clock()
    impact = assess(ctx.spec, state, plan, production=ctx.access.production, ownership=how, now=now,
                    previous=_previous_impact(ctx))
    ctx.fields["impact"] = impact.to_wire()
    if ctx.spec.dry_run:
        message = f"dry run: assessed, nothing acted on: {impact.summary}"
        _finish(ctx, RemediationPhase.ASSESSED, "ready", "DryRun", message, now)
        return None

    request, decision = _decide(ctx, impact, now)
    if decision.state == approvals.ApprovalState.EXPIRED:
        impact = assess(ctx.spec, state, plan, production=ctx.access.production, ownership=how, now=now,
                        previous=impact, expired=True)
        ctx.fields["impact"] = impact.to_wire()
        request, decision = _decide(ctx, impact, now)
    decision, policy = _safeguard(ctx, decision)
    ctx.fields["approval"] = decision.status(request, now, _previous_approval(ctx)).to_wire()
    if not decision.approved:
        # A refused approval is bad input (Stalled, a Warning Event); the assessment still waits for a good one.
        _write(ctx, _outcome(ctx, "stalled" if decision.refused else "reconciling", decision.reason,
                             f"{decision.message}; {impact.summary}", RemediationPhase.AWAITING_APPROVAL,
                             decision.condition(), *policy,
                             (VERIFIED, "Unknown", "NotActed", "nothing has been done yet")))
        return _epoch(decision.expires_at) if decision.expires_at else None

    intent = short_digest({"uid": ctx.uid, "digest": impact.digest})
    result = ActionResult(intent=intent, request=plan.request, target=ctx.spec.target, action=ctx.spec.action,
                          parameters=ctx.spec.parameters, started_at=rfc3339(now), previous_state=state,
                          message=f"asking AWS to {ctx.spec.action} {ctx.spec.target.id}")
    ctx.fields["actionResult"] = result.to_wire()
    try:
        _write(ctx, _outcome(ctx, "reconciling", "Acting", f"{decision.message}; acting: {impact.summary}",
                             RemediationPhase.ACTING, decision.condition()), precondition=True)
    except ApiException as exc:
        if exc.status == 409:
            return time.time()  # changed since it was read (an approval withdrawn, another writer): read again
        raise
    return _act(ctx, client, result, decision.condition())


def _decide(ctx: Context, impact: ImpactAssessment,
            now: datetime) -> tuple[approvals.ApprovalRequest, approvals.ApprovalDecision]:
    approval = ctx.spec.approval
    expires = approvals.expiry(parse_duration(approval.expires_after) if approval.expires_after else None,
                               ctx.access.production)
    request = approvals.ApprovalRequest(
        subject="impact assessment",
        digest=impact.digest,
        requested_at=parse_rfc3339(impact.assessed_at) if impact.assessed_at else now,
        production=ctx.access.production,
        auto_allowed=not (ctx.access.production or approval.required),
        expires_after=expires,
        how_to_approve=approve_command(ctx.namespace, ctx.name, impact.digest),
    )
    given = approvals.GivenApproval(digest=approval.assessment_digest if approval.approved else None,
                                    approved_by=approval.approved_by)
    return request, approvals.decide(request, given, now)


def _safeguard(ctx: Context, decision: approvals.ApprovalDecision,
               ) -> tuple[approvals.ApprovalDecision, tuple[tuple[str, str, str, str], ...]]:
    """For a decision that waits for a human (or a manual approval): the ApprovalPolicyEnforced condition, and
    the approval refused where the operator requires the admission policies and they are not enforced, or
    where the two-person rule is on (the environment's requireDistinctApprover, or the namespace label) and
    the approver is whoever last changed the spec, or nobody is recorded as its author: the same rule, and
    the same decision, as for an InfraDeployment's plan."""
    if decision.state not in (approvals.ApprovalState.PENDING, approvals.ApprovalState.VOID,
                              approvals.ApprovalState.APPROVED):
        return decision, ()
    guards, policy = admission.safeguards(ctx.runtime.approval_policies, ctx.runtime.config, KIND.kind, ctx.obj,
                                          decision=decision,
                                          distinct_in_project=ctx.access.environment.require_distinct_approver,
                                          namespace_labels=ctx.runtime.namespace_labels)
    guarded = approvals.safeguard(decision, guards)
    previous = [c.get("reason") for c in ctx.status.get("conditions") or []
                if c.get("type") == approvals.APPROVED_CONDITION]
    if guarded.refused and guarded.refused not in previous:
        metrics.APPROVALS_REFUSED.labels(KIND.kind, guarded.refused).inc()
    return guarded, (policy.condition(),)


def awaiting() -> list[tuple[str, str]]:
    """(namespace, name) of the Remediations this process last saw waiting for an approval."""
    with _locks_guard:
        return sorted(_awaiting)


# --- acting -----------------------------------------------------------------------------------------------


def _act(ctx: Context, client: Any, result: ActionResult, *conditions: tuple[str, str, str, str]) -> float | None:
    target = ctx.target()
    try:
        details = ctx.executor().act(client, target, result.request, str(result.intent))
    except AWS_ERRORS as exc:
        failure = classify(exc)
        if failure.retryable:
            # Still Acting with the intent recorded: the next step confirms from the resource, then acts.
            _write(ctx, _outcome(ctx, "reconciling", AWS_UNREACHABLE,
                                 f"the action did not go through yet ({failure.summary}): {failure.fix}",
                                 RemediationPhase.ACTING, *conditions))
            return _epoch(ctx.clock() + AWS_RETRY)
        done = result.model_copy(update={"completed_at": rfc3339(ctx.clock()), "succeeded": False,
                                         "message": f"AWS refused the action: {failure.summary}: {failure.fix}"})
        ctx.fields["actionResult"] = done.to_wire()
        _finish(ctx, RemediationPhase.FAILED, "stalled", "ActionFailed", done.message, ctx.clock(), *conditions)
        return None
    metrics.REMEDIATION_ACTIONS_TOTAL.labels(str(ctx.spec.action), str(target.type)).inc()
    effect = spec_of(ctx.spec.action).target(target.type)
    done = result.model_copy(update={"completed_at": rfc3339(ctx.clock()), "succeeded": True, "details": details,
                                     "message": f"{ctx.spec.action} sent: {effect.effect if effect else ''}"})
    return _acted(ctx, done, *conditions)


def _acted(ctx: Context, done: ActionResult, *conditions: tuple[str, str, str, str]) -> float | None:
    ctx.fields["actionResult"] = done.to_wire()
    now = ctx.clock()
    if not ctx.spec.verification.enabled:
        message = f"{done.message}; not verified (verification.enabled is false)"
        _finish(ctx, RemediationPhase.SUCCEEDED, "ready", "Succeeded", message, now, *conditions,
                (VERIFIED, "Unknown", "NotVerified", "verification.enabled is false"))
        return None
    delay = parse_duration(ctx.spec.verification.delay)
    timeout = parse_duration(ctx.spec.verification.timeout)
    first = first_check_at(now, delay)
    check = VerificationResult(started_at=rfc3339(now), next_check_at=rfc3339(first),
                               deadline=rfc3339(first + timeout), source=_source(ctx),
                               message=(f"first health check at {rfc3339(first)} (verification.delay, and one "
                                        "whole minute of datapoints after the action)"))
    ctx.fields["verification"] = check.to_wire()
    _write(ctx, _outcome(ctx, "reconciling", "Verifying", f"{done.message}; {check.message}",
                         RemediationPhase.VERIFYING, *conditions,
                         (VERIFIED, "Unknown", "Verifying", check.message)))
    return _epoch(first)


def _source(ctx: Context) -> str:
    ref = ctx.spec.verification.health_check_ref
    return f"HealthCheck {ref.name}" if ref else "built-in check"


def _resume_action(ctx: Context) -> float | None:
    """Acting was recorded but its completion was not: find out from the resource whether it happened."""
    result = ActionResult.model_validate(ctx.status.get("actionResult") or {})
    if result.completed_at:
        return _acted(ctx, result)
    client = ctx.client()
    started = parse_rfc3339(result.started_at) if result.started_at else ctx.clock()
    try:
        described = ctx.adapter().describe(client, ctx.target())
        state = ctx.executor().read(client, ctx.target(), described)
        applied = ctx.executor().confirm(client, ctx.target(), state, result.request, result.previous_state,
                                         str(result.intent), started)
    except AWS_ERRORS as exc:
        return _aws_failure(ctx, exc, "checking whether the interrupted action happened")
    if applied == Applied.YES:
        done = result.model_copy(update={
            "completed_at": rfc3339(ctx.clock()), "succeeded": True,
            "message": (f"{ctx.spec.action} confirmed from the resource's state after an interruption "
                        "(the action was not sent again)")})
        return _acted(ctx, done)
    if applied == Applied.NO:
        # The first call never changed the resource: this is the only one, so it is decided again here, on the
        # spec as frozen in status (target, action, parameters, the assessment's digest), as a first act is.
        if not _still_allowed(ctx, client):
            return None
        return _act(ctx, client, result)
    done = result.model_copy(update={
        "completed_at": rfc3339(ctx.clock()), "succeeded": None,
        "message": (f"the operator was interrupted after asking AWS to {ctx.spec.action} {ctx.spec.target.id}, and "
                    "the resource's state cannot tell whether it happened: it is not done again (acting twice "
                    "is worse); check the resource (its events) and create a new Remediation if it is needed")})
    ctx.fields["actionResult"] = done.to_wire()
    _finish(ctx, RemediationPhase.FAILED, "stalled", "InterruptedUncertain", done.message, ctx.clock())
    return None


def _still_allowed(ctx: Context, client: Any) -> bool:
    """Before an interrupted action is sent after all: the target is still the namespace's, and the approval
    still names the frozen assessment (not withdrawn, denied or expired). Otherwise nothing is sent, and the
    status says why (a withdrawn approval waits for a new one)."""
    if _owned(ctx, client) is None:  # written Stalled (OutsideProject)
        return False
    impact = _previous_impact(ctx)
    if impact is None or not impact.digest:
        _write(ctx, _outcome(ctx, "stalled", "NotActed", "the interrupted action's assessment is missing from "
                             "status: nothing was sent; create a new Remediation", RemediationPhase.FAILED))
        return False
    _request, decision = _decide(ctx, impact, ctx.clock())
    decision, policy = _safeguard(ctx, decision)  # what a first act needs: the policies, the two-person rule
    if decision.approved:
        return True
    ctx.fields["actionResult"] = None  # never sent: nothing to confirm later
    _write(ctx, _outcome(ctx, "stalled" if decision.refused else "reconciling", decision.reason,
                         f"the interrupted action was not sent: {decision.message}; {impact.summary}",
                         RemediationPhase.AWAITING_APPROVAL, decision.condition(), *policy,
                         (VERIFIED, "Unknown", "NotActed", "nothing has been done yet")))
    return False


# --- verification and rollback -------------------------------------------------------------------------------


def _verify(ctx: Context) -> float | None:
    check = VerificationResult.model_validate(ctx.status.get("verification") or {})
    result = ActionResult.model_validate(ctx.status.get("actionResult") or {})
    now = ctx.clock()
    due = parse_rfc3339(check.next_check_at) if check.next_check_at else now
    if now < due:
        return _epoch(due)
    since = parse_rfc3339(result.completed_at or check.started_at or rfc3339(now))
    deadline = parse_rfc3339(check.deadline) if check.deadline else now
    try:
        reading = read_target_health(ctx.runtime, ctx.access, ctx.namespace, ctx.spec, since, now)
    except AWS_ERRORS as exc:
        failure = classify(exc)
        reading_reasons = [f"health could not be read: {failure.summary}"]
        verdict, source = Verdict.NO_DATA, check.source
    else:
        reading_reasons, verdict, source = reading.reasons, reading.verdict, reading.source
    reasons = reading_reasons[:20]
    decision = verification.judge(verdict, accept_degraded=ctx.spec.verification.accept_degraded, now=now,
                                  deadline=deadline)
    checked = check.model_copy(update={"checks": check.checks + 1, "verdict": verdict, "reasons": reasons,
                                       "source": source})
    if decision == verification.Next.PASS:
        checked = checked.model_copy(update={"passed": True, "completed_at": rfc3339(now), "next_check_at": None,
                                             "message": f"{verdict} after {checked.checks} check(s)"})
        ctx.fields["verification"] = checked.to_wire()
        _finish(ctx, RemediationPhase.SUCCEEDED, "ready", "Succeeded",
                f"{result.message}; verified: {checked.message} ({source})", now,
                (VERIFIED, "True", "Healthy", checked.message))
        return None
    if decision == verification.Next.WAIT:
        following = now + verification.interval(parse_duration(ctx.spec.verification.delay))
        checked = checked.model_copy(update={"next_check_at": rfc3339(following),
                                             "message": f"{verdict} at check {checked.checks}; checking again "
                                                        f"until {rfc3339(deadline)}"})
        ctx.fields["verification"] = checked.to_wire()
        _write(ctx, _outcome(ctx, "reconciling", "Verifying", f"{result.message}; {checked.message}",
                             RemediationPhase.VERIFYING, (VERIFIED, "Unknown", "Verifying", checked.message)))
        return _epoch(following)
    checked = checked.model_copy(update={"passed": False, "completed_at": rfc3339(now), "next_check_at": None,
                                         "message": f"still {verdict} at the deadline after {checked.checks} "
                                                    f"check(s): {'; '.join(reasons) or 'no reason given'}"})
    ctx.fields["verification"] = checked.to_wire()
    return _roll_back(ctx, result, checked)


def _roll_back(ctx: Context, result: ActionResult, checked: VerificationResult) -> float | None:
    failed = (VERIFIED, "False", "VerificationFailed", checked.message)
    action = spec_of(ctx.spec.action)
    why_not = ("verification.rollbackOnFailure is false" if not ctx.spec.verification.rollback_on_failure
               else None if action.inverse else action.no_inverse)
    if why_not or action.inverse is None:
        ctx.fields["rollback"] = RollbackInfo(attempted=False, message=f"no rollback: {why_not}").to_wire()
        _finish(ctx, RemediationPhase.FAILED, "stalled", "VerificationFailed",
                f"verification failed: {checked.message}; no rollback: {why_not}", ctx.clock(), failed)
        return None
    inverse = ctx.executor().inverse_request(result.previous_state, result.request)
    rollback = RollbackInfo(attempted=True, action=action.inverse.action, intent=f"{result.intent}-rollback",
                            request=inverse, at=rfc3339(ctx.clock()),
                            message=f"verification failed: {action.inverse.restores}")
    ctx.fields["rollback"] = rollback.to_wire()
    _write(ctx, _outcome(ctx, "reconciling", "RollingBack", f"verification failed: {checked.message}; rolling back",
                         RemediationPhase.ROLLING_BACK, failed), precondition=True)
    return _send_rollback(ctx, rollback)


def _send_rollback(ctx: Context, rollback: RollbackInfo) -> float | None:
    failed = (VERIFIED, "False", "VerificationFailed", str((ctx.fields.get("verification") or {}).get("message")))
    executor = ctx.executor(rollback.action)
    try:
        executor.act(ctx.client(), ctx.target(), rollback.request, str(rollback.intent))
    except AWS_ERRORS as exc:
        failure = classify(exc)
        if failure.retryable:
            _write(ctx, _outcome(ctx, "reconciling", AWS_UNREACHABLE,
                                 f"the rollback did not go through yet ({failure.summary}): {failure.fix}",
                                 RemediationPhase.ROLLING_BACK, failed))
            return _epoch(ctx.clock() + AWS_RETRY)
        done = rollback.model_copy(update={"succeeded": False,
                                           "message": f"the rollback failed: {failure.summary}: {failure.fix}"})
        ctx.fields["rollback"] = done.to_wire()
        _finish(ctx, RemediationPhase.FAILED, "stalled", "RollbackFailed", done.message, ctx.clock(), failed)
        return None
    metrics.REMEDIATION_ACTIONS_TOTAL.labels(str(rollback.action), str(ctx.target().type)).inc()
    _rolled_back(ctx, rollback, "restored")
    return None


def _rolled_back(ctx: Context, rollback: RollbackInfo, how: str) -> None:
    failed = (VERIFIED, "False", "VerificationFailed", str((ctx.fields.get("verification") or {}).get("message")))
    restored = ", ".join(f"{k}={v}" for k, v in rollback.request.items())
    done = rollback.model_copy(update={"succeeded": True, "restored": dict(rollback.request),
                                       "message": f"{how}: {restored}"})
    ctx.fields["rollback"] = done.to_wire()
    verified = (ctx.fields.get("verification") or {}).get("message")
    _finish(ctx, RemediationPhase.ROLLED_BACK, "stalled", "RolledBack",
            f"verification failed ({verified}); rolled back with {rollback.action}: {restored}", ctx.clock(), failed)


def _resume_rollback(ctx: Context) -> float | None:
    rollback = RollbackInfo.model_validate(ctx.status.get("rollback") or {})
    result = ActionResult.model_validate(ctx.status.get("actionResult") or {})
    executor = ctx.executor(rollback.action)
    client = ctx.client()
    try:
        described = ctx.adapter().describe(client, ctx.target())
        state = executor.read(client, ctx.target(), described)
        applied = executor.confirm(client, ctx.target(), state, rollback.request, result.previous_state,
                                   str(rollback.intent), parse_rfc3339(rollback.at) if rollback.at else ctx.clock())
    except AWS_ERRORS as exc:
        return _aws_failure(ctx, exc, "checking whether the interrupted rollback happened")
    if applied == Applied.YES:
        _rolled_back(ctx, rollback, "restored (confirmed from the resource's state after an interruption)")
        return None
    return _send_rollback(ctx, rollback)


# --- the end: the log, the metrics, the status ---------------------------------------------------------------


def _project_object(ctx: Context) -> dict[str, Any] | None:
    try:
        found = CustomObjectsApi(ctx.runtime.kube).get_namespaced_custom_object(
            API_GROUP, API_VERSION, ctx.access.namespace, PROJECT_KIND.plural, ctx.access.name,
            _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    assert isinstance(found, dict)
    return found


def log_entry(ctx: Context, phase: RemediationPhase, message: str, now: datetime) -> dict[str, Any]:
    impact = ctx.fields.get("impact") or {}
    result = ctx.fields.get("actionResult") or {}
    checked = ctx.fields.get("verification") or {}
    rollback = ctx.fields.get("rollback") or {}
    approval = ctx.fields.get("approval") or {}
    return {
        "uid": ctx.uid, "namespace": ctx.namespace, "name": ctx.name, "environment": ctx.spec.environment,
        "target": f"{ctx.spec.target.type}/{ctx.spec.target.id}", "action": str(ctx.spec.action),
        "parameters": ctx.spec.parameters.to_wire(), "reason": ctx.spec.reason,
        "source": ctx.spec.source.health_check if ctx.spec.source else None,
        "outcome": phase.value, "digest": impact.get("digest"), "approvedBy": approval.get("approvedBy"),
        "startedAt": result.get("startedAt"), "completedAt": rfc3339(now),
        "verdict": checked.get("verdict"), "rolledBack": bool(rollback.get("succeeded")), "message": message,
    }


def _finish(ctx: Context, phase: RemediationPhase, state: str, reason: str, message: str, now: datetime,
            *conditions: tuple[str, str, str, str]) -> None:
    """Log it (before the status: a crash in between logs it once, the uid dedupes), then the outcome."""
    log = remediation_log.remediation_log(ctx.runtime.kube, ctx.access.namespace, ctx.access.name,
                                          _project_object(ctx))
    remediation_log.append(log, log_entry(ctx, phase, message, now))
    ctx.fields["logConfigMap"] = remediation_log.log_name(ctx.access.name)
    metrics.REMEDIATIONS_TOTAL.labels(str(ctx.spec.action), str(ctx.spec.target.type), phase.value).inc()
    _write(ctx, _outcome(ctx, state, reason, message, phase, *conditions))
