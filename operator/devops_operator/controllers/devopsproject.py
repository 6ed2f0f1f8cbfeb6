"""DevOpsProject controller: parse the spec, validate it, verify its AWS identities, write status.

Thin by design: spec checks live in `devops_operator.projects` (pure), credential checks in
`devops_operator.aws.identity` (one sts:GetCallerIdentity per identity, through the session
factory, which alone reads credentials Secrets); this module calls them and writes the outcome.
"""

from __future__ import annotations

from typing import Any

import kopf

from devops_operator import metrics, projects
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import KIND, EnvironmentStatus
from devops_operator.aws.identity import IdentityCheck, verify_identities
from devops_operator.controllers.status import Outcome, write_outcome
from devops_operator.runtime import Runtime

CREDENTIALS_VERIFIED = "CredentialsVerified"
RECONCILE_ERROR = "ReconcileError"
NOT_CHECKED = (CREDENTIALS_VERIFIED, "Unknown", "NotChecked", "the spec must be valid before credentials are checked")


def project_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def evaluate(name: str, namespace: str, spec: dict[str, Any], runtime: Runtime) -> Outcome:
    """Decide the project's outcome from its spec and AWS's answer for each identity."""
    key = project_key(namespace, name)
    parsed, problems = projects.parse_spec(spec)
    report = projects.validate_project(name, parsed) if parsed is not None else None
    if parsed is None or report is None or not report.valid:
        # Nothing else may keep using the last good spec (or the sessions built from it).
        runtime.forget_project(key)
        message = "; ".join(str(p) for p in problems) if report is None else report.summary()
        return Outcome.stalled("InvalidSpec", message, {"environments": [], "environmentCount": 0}, (NOT_CHECKED,))
    runtime.remember_project(key, parsed)
    checks = verify_identities(runtime.aws, key, parsed.environments)
    return _outcome(report.environments, checks)


def _outcome(environments: list[EnvironmentStatus], checks: list[IdentityCheck]) -> Outcome:
    callers = {c.environment: c.caller for c in checks if c.identity == "deploy" and c.caller}
    rendered = [
        env.model_copy(update={"identity": callers[env.name].arn, "account_id": callers[env.name].account})
        if env.name in callers else env
        for env in environments
    ]
    fields: dict[str, Any] = {"environments": [env.to_wire() for env in rendered],
                              "environmentCount": len(rendered)}
    failed = [c for c in checks if c.failure is not None]
    if not failed:
        message = f"{len(rendered)} environment(s) ready: {', '.join(e.name for e in rendered)}"
        verified = (CREDENTIALS_VERIFIED, "True", "Verified", f"{len(checks)} identity(ies) verified with sts")
        return Outcome.ready("Validated", message, fields, (verified,))
    message = "; ".join(c.describe() for c in failed)
    if all(c.transient for c in failed):
        # AWS unreachable, throttling or failing: nothing to fix in the spec, keep trying.
        unknown = (CREDENTIALS_VERIFIED, "Unknown", "AwsUnreachable", message)
        return Outcome.reconciling("AwsUnreachable", message, "Pending", fields, (unknown,))
    reason = "MissingCredentials" if any(c.missing_credentials for c in failed) else "CredentialsRejected"
    return Outcome.stalled(reason, message, fields, ((CREDENTIALS_VERIFIED, "False", reason, message),))


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
def reconcile_project(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    runtime: Runtime = memo.runtime
    assert namespace is not None  # DevOpsProject is namespaced
    with metrics.reconcile_timer(KIND.kind) as result:
        try:
            outcome = evaluate(name, namespace, dict(spec), runtime)
        except Exception as exc:  # an API error or a bug: say so in status, then let kopf back off
            outcome = Outcome.reconciling(RECONCILE_ERROR, f"{type(exc).__name__}: {exc}", "Pending")
        status = write_outcome(KIND.kind, body, patch, outcome)
        # kopf logs a TemporaryError's text: only ever the redacted message written to status.
        if outcome.state == "reconciling":
            result["value"] = metrics.Outcome.ERROR if outcome.reason == RECONCILE_ERROR else metrics.Outcome.RETRY
            raise kopf.TemporaryError(status["message"], delay=runtime.config.stalled_recheck_seconds)
        if outcome.state == "stalled":
            result["value"] = metrics.Outcome.STALLED
            if outcome.reason in ("MissingCredentials", "CredentialsRejected"):
                # A Secret or an IAM policy may be fixed outside this object: look again, no crash loop.
                raise kopf.TemporaryError(status["message"], delay=runtime.config.stalled_recheck_seconds)


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=lambda type, **_: type == "DELETED")
def forget_project(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A deleted project leaves nothing behind: no cached spec or sessions, no metric series.

    An event handler rather than a delete handler: cleaning in-memory state needs no finalizer.
    """
    runtime: Runtime = memo.runtime
    runtime.forget_project(project_key(namespace or "", name))
    metrics.forget_resource(KIND.kind, namespace or "", name)

