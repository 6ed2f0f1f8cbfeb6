"""DevOpsProject controller: parse the spec, validate it, check it against the tenancy policy, verify
its AWS identities, write status.

Thin by design: spec checks live in `devops_operator.projects` (pure), policy checks in
`devops_operator.tenancy` (pure), credential checks in `devops_operator.aws.identity` (one
sts:GetCallerIdentity per identity, through the session factory, which alone reads credentials
Secrets); this module calls them and writes the outcome.

Waiting is quiet: a project waiting for something outside it (a Secret created later, an IAM fix, a
policy change) is looked at again by `ProjectRechecks` through the operator's one scheduler
(`controllers/wakeups.py`), on a back-off, not by a handler failing and logging ERROR every few seconds;
Ready projects are re-verified by it too. Only unexpected failures and
an unreachable AWS retry through kopf, with exponential backoff from kopf's retry count.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator import metrics, projects, tenancy
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import KIND, EnvironmentStatus
from devops_operator.aws.identity import IdentityCheck, verify_identities
from devops_operator.controllers.status import Outcome, apply_outcome, retry_delay, write_outcome
from devops_operator.controllers.wakeups import Wakeups, waiting_delay
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import rfc3339
from devops_operator.runtime import Runtime

logger = logging.getLogger(__name__)

CREDENTIALS_VERIFIED = "CredentialsVerified"
RECONCILE_ERROR = "ReconcileError"
POLICY_DENIED = "PolicyDenied"
INVALID_SPEC = "InvalidSpec"
NOT_CHECKED = (CREDENTIALS_VERIFIED, "Unknown", "NotChecked", "the spec must be valid before credentials are checked")
# Stalled reasons that something outside the spec can fix: the timer looks again.
WAITING_REASONS = frozenset({"MissingCredentials", "CredentialsRejected", POLICY_DENIED})


def project_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def evaluate(name: str, namespace: str, spec: dict[str, Any], runtime: Runtime) -> Outcome:
    """Decide the project's outcome from its spec, the tenancy policy and AWS's answer for each identity."""
    key = project_key(namespace, name)
    parsed, problems = projects.parse_spec(spec)
    report = projects.validate_project(name, parsed) if parsed is not None else None
    if parsed is None or report is None or not report.valid:
        # Nothing else may keep using the last good spec (or the sessions built from it).
        runtime.forget_project(key)
        message = "; ".join(str(p) for p in problems) if report is None else report.summary()
        return Outcome.stalled(INVALID_SPEC, message, {"environments": [], "environmentCount": 0}, (NOT_CHECKED,))

    policy = runtime.tenancy.current()
    labels = runtime.namespace_labels(namespace) if policy.uses_labels else {}
    rule = policy.rule_for(namespace, labels).name
    violations = tenancy.project_violations(policy, namespace, parsed, labels)
    if violations:
        runtime.forget_project(key)  # no AWS call is ever made with a spec the policy refuses
        message = "; ".join(str(p) for p in violations)
        fields = {"environments": [], "environmentCount": 0, "tenancyRule": rule}
        return Outcome.stalled(POLICY_DENIED, message, fields, (NOT_CHECKED,))

    runtime.admit_project(key, parsed)
    checks = verify_identities(runtime.aws, key, parsed.environments)
    outcome = _outcome(report.environments, checks, rule)
    runtime.mark_verified(key, outcome.state == "ready")
    return outcome


def _outcome(environments: list[EnvironmentStatus], checks: list[IdentityCheck], rule: str) -> Outcome:
    callers = {c.environment: c.caller for c in checks if c.identity == "deploy" and c.caller}
    planners = {c.environment: c.caller for c in checks if c.identity == "plan" and c.caller}
    rendered = []
    for env in environments:
        update: dict[str, Any] = {}
        if env.name in callers:
            update |= {"identity": callers[env.name].arn, "account_id": callers[env.name].account}
        if env.name in planners:
            update["plan_identity"] = f"{projects.PLAN_CREDENTIALS}: {planners[env.name].arn}"
        rendered.append(env.model_copy(update=update) if update else env)
    fields: dict[str, Any] = {"environments": [env.to_wire() for env in rendered],
                              "environmentCount": len(rendered), "tenancyRule": rule}
    plans = projects.plan_identity_condition(environments)
    failed = [c for c in checks if c.failure is not None]
    if not failed:
        message = f"{len(rendered)} environment(s) ready: {', '.join(e.name for e in rendered)}"
        verified = (CREDENTIALS_VERIFIED, "True", "Verified", f"{len(checks)} identity(ies) verified with sts")
        return Outcome.ready("Validated", message, {**fields, "lastVerified": rfc3339()}, (verified, plans))
    message = "; ".join(c.describe() for c in failed)
    if all(c.transient for c in failed):
        # AWS unreachable, throttling or failing: nothing to fix in the spec, keep trying.
        unknown = (CREDENTIALS_VERIFIED, "Unknown", "AwsUnreachable", message)
        return Outcome.reconciling("AwsUnreachable", message, "Pending", fields, (unknown, plans))
    reason = "MissingCredentials" if any(c.missing_credentials for c in failed) else "CredentialsRejected"
    return Outcome.stalled(reason, message, fields, ((CREDENTIALS_VERIFIED, "False", reason, message), plans))


def _reconcile(name: str, namespace: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo,
               retry: int) -> None:
    """Evaluate, write status, and retry through kopf only when the failure is not a quiet wait."""
    runtime: Runtime = memo.runtime
    with metrics.reconcile_timer(KIND.kind) as result:
        try:
            outcome = evaluate(name, namespace, dict(body.get("spec") or {}), runtime)
        except Exception as exc:  # an API error or a bug: say so in status, then let kopf back off
            outcome = Outcome.reconciling(RECONCILE_ERROR, f"{type(exc).__name__}: {exc}", "Pending")
        status = write_outcome(KIND.kind, body, patch, outcome)
        result["value"] = _metric_outcome(outcome)
        rechecks: ProjectRechecks | None = memo.get("project_rechecks")
        if rechecks is not None:
            rechecks.record(project_key(namespace, name), body.metadata.get("generation"), outcome)
        deployments = memo.get("deployments")
        if deployments is not None:  # its environments (change windows, policies) may have changed
            deployments.project_changed(namespace, name)
        if outcome.state == "reconciling":
            config = runtime.config
            delay = retry_delay(retry, base=config.retry_base_seconds, cap=config.retry_cap_seconds)
            # kopf logs a TemporaryError's text: only ever the redacted message written to status.
            raise kopf.TemporaryError(status["message"], delay=delay)


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
def reconcile_project(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **_: Any,
) -> None:
    assert namespace is not None  # DevOpsProject is namespaced
    _reconcile(name, namespace, body, patch, memo, retry)


@dataclass
class Evaluation:
    """What the last evaluation of one project concluded, for deciding when to look again."""

    generation: int | None
    state: str
    reason: str
    evaluated_at: float  # epoch seconds (the scheduler's clock)
    verified_at: float | None
    waits: int = 0  # evaluations in a row that waited for the same thing


def waiting(state: str, reason: str) -> bool:
    return state == "stalled" and reason in WAITING_REASONS


def next_recheck(evaluation: Evaluation, *, reverify_seconds: float, recheck_seconds: float) -> float | None:
    """When to evaluate a project again (pure): a Ready one when its verification is due, one waiting for
    something outside it on a back-off from the recheck interval; None: wait for an edit (invalid specs) or
    for kopf's retry (failures)."""
    if evaluation.state == "ready":
        verified = evaluation.verified_at if evaluation.verified_at is not None else evaluation.evaluated_at
        return verified + reverify_seconds
    if waiting(evaluation.state, evaluation.reason):
        return evaluation.evaluated_at + waiting_delay(evaluation.waits, recheck_seconds)
    return None


class ProjectRechecks:
    """Looks again at projects between their changes, through the operator's scheduler (so no finalizer and
    no ERROR logs are needed for waiting): re-verifies Ready projects every `reverify_seconds` and at once
    after a credentials change or an auth failure; re-evaluates projects waiting for a Secret, an IAM fix or
    a tenancy policy change from every `stalled_recheck_seconds` on, backing off while nothing changes."""

    def __init__(self, runtime: Runtime, wakeups: Wakeups | None = None) -> None:
        self.runtime = runtime
        self.wakeups = wakeups or Wakeups()
        self.clock = self.wakeups.clock
        self._lock = threading.Lock()
        self._evaluations: dict[str, Evaluation] = {}
        self.wakeups.register(KIND.kind, lambda namespace, name: self.recheck(project_key(namespace, name)))
        runtime.on_reverification(self.reverify_now)

    def record(self, key: str, generation: int | None, outcome: Outcome) -> None:
        now = self.clock()
        # A Ready outcome means every identity just answered STS: that is the verification time.
        verified_at = now if outcome.state == "ready" else None
        with self._lock:
            known = self._evaluations.get(key)
            waits = 0
            if waiting(outcome.state, outcome.reason):
                same = known is not None and (known.state, known.reason) == (outcome.state, outcome.reason)
                waits = known.waits + 1 if same and known is not None else 1
            evaluation = Evaluation(generation, outcome.state, outcome.reason, now, verified_at, waits)
            self._evaluations[key] = evaluation
        config = self.runtime.config
        at = next_recheck(evaluation, reverify_seconds=config.reverify_seconds,
                          recheck_seconds=config.stalled_recheck_seconds)
        namespace, _, name = key.partition("/")
        if at is None:
            self.wakeups.cancel(KIND.kind, namespace, name)
        else:
            self.wakeups.schedule(KIND.kind, namespace, name, at)

    def reverify_now(self, key: str) -> None:
        """A Secret it uses changed, or a call failed authentication: look at the project now."""
        with self._lock:
            known = self._evaluations.get(key)
        if known is not None and (known.state == "ready" or waiting(known.state, known.reason)):
            namespace, _, name = key.partition("/")
            self.wakeups.schedule(KIND.kind, namespace, name, self.clock())

    def forget(self, key: str) -> None:
        with self._lock:
            self._evaluations.pop(key, None)
        namespace, _, name = key.partition("/")
        self.wakeups.cancel(KIND.kind, namespace, name)

    def recheck(self, key: str) -> None:
        """Evaluate one project again and write its status directly (the API, not a kopf patch)."""
        namespace, _, name = key.partition("/")
        try:
            obj = CustomObjectsApi(self.runtime.kube).get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, KIND.plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                self.forget(key)
                return
            raise
        assert isinstance(obj, dict)
        generation = obj["metadata"].get("generation")
        with self._lock:
            known = self._evaluations.get(key)
        if known is None or known.generation != generation:
            return  # a change is on its way to kopf's handler, which evaluates it
        with metrics.reconcile_timer(KIND.kind) as result:
            outcome = evaluate(name, namespace, dict(obj.get("spec") or {}), self.runtime)
            # Still waiting for the same thing: the status already says so (no write, no churn).
            apply_outcome(self.runtime.kube, KIND, obj, outcome, only_if_changed=waiting(outcome.state,
                                                                                          outcome.reason))
            result["value"] = _metric_outcome(outcome)
        self.record(key, generation, outcome)


def _metric_outcome(outcome: Outcome) -> str:
    if outcome.state == "reconciling":
        return metrics.Outcome.ERROR if outcome.reason == RECONCILE_ERROR else metrics.Outcome.RETRY
    return metrics.Outcome.STALLED if outcome.state == "stalled" else metrics.Outcome.SUCCESS


@kopf.on.event("", "v1", "secrets")
def secret_changed(
    name: str, namespace: str | None, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Track credentials Secrets: a rotated key is used at once, and its projects are verified again."""
    runtime: Runtime = memo.runtime
    version = None if type == "DELETED" else body.metadata.get("resourceVersion")
    for key in runtime.secret_seen(namespace or "", name, version):
        runtime.request_reverification(key)


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=lambda type, **_: type == "DELETED")
def forget_project(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A deleted project leaves nothing behind: no cached spec or sessions, no metric series.

    An event handler rather than a delete handler: cleaning in-memory state needs no finalizer.
    """
    runtime: Runtime = memo.runtime
    key = project_key(namespace or "", name)
    runtime.forget_project(key)
    rechecks: ProjectRechecks | None = memo.get("project_rechecks")
    if rechecks is not None:
        rechecks.forget(key)
    metrics.forget_resource(KIND.kind, namespace or "", name)
