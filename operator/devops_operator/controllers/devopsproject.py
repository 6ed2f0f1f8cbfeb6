"""DevOpsProject controller: parse the spec, validate it, verify its AWS identities, write status.

Thin by design: the checks live in `devops_operator.projects` (pure) and
`devops_operator.aws.identity` (one sts:GetCallerIdentity per identity); this module reads
the Secrets the spec names, calls them and writes the outcome.
"""

from __future__ import annotations

from typing import Any

import kopf

from devops_operator import metrics, projects
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import KIND, DevOpsProjectSpec, EnvironmentStatus
from devops_operator.aws.identity import IdentityCheck, verify_identities
from devops_operator.controllers.status import Outcome, write_outcome
from devops_operator.runtime import Runtime

CREDENTIALS_VERIFIED = "CredentialsVerified"


def project_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def evaluate(name: str, namespace: str, spec: dict[str, Any], runtime: Runtime) -> Outcome:
    """Decide the project's outcome from its spec, the Secrets it references and AWS's answer."""
    parsed, problems = projects.parse_spec(spec)
    if parsed is None:
        return Outcome.stalled("InvalidSpec", "; ".join(str(p) for p in problems), environments=[],
                               environmentCount=0)
    report = projects.validate_project(name, parsed, lambda secret: runtime.read_secret(namespace, secret))
    if not report.valid:
        reason = "MissingCredentials" if any("secretRef" in p.field for p in report.problems) else "InvalidSpec"
        return Outcome.stalled(reason, report.summary(), environments=[], environmentCount=0)

    key = project_key(namespace, name)
    runtime.remember_project(key, parsed)  # the spec or its Secrets may have changed since the last look
    checks = verify_identities(runtime.aws, key, parsed.environments)
    return _outcome(parsed, report.environments, checks)


def _outcome(spec: DevOpsProjectSpec, environments: list[EnvironmentStatus], checks: list[IdentityCheck]) -> Outcome:
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
        verified = (CREDENTIALS_VERIFIED, True, "Verified", f"{len(checks)} identity(ies) verified with sts")
        return Outcome("ready", "Validated", message, "Ready", fields, (verified,))
    message = "; ".join(c.describe() for c in failed)
    unverified = (CREDENTIALS_VERIFIED, False, "Unverified", message)
    if all(c.transient for c in failed):
        # AWS unreachable or throttling: nothing to fix in the spec, keep trying.
        return Outcome("reconciling", "AwsUnreachable", message, "Pending", fields, (unverified,))
    return Outcome("stalled", "CredentialsRejected", message, "Stalled", fields, (unverified,))


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
        outcome = evaluate(name, namespace, dict(spec), runtime)
        write_outcome(KIND.kind, body, patch, outcome)
        if outcome.state == "reconciling":
            result["value"] = metrics.Outcome.RETRY
            raise kopf.TemporaryError(outcome.message, delay=runtime.config.stalled_recheck_seconds)
        if outcome.state == "stalled":
            result["value"] = metrics.Outcome.STALLED
            if outcome.reason in ("MissingCredentials", "CredentialsRejected"):
                # A Secret or an IAM policy may be fixed outside this object: look again, no crash loop.
                raise kopf.TemporaryError(outcome.message, delay=runtime.config.stalled_recheck_seconds)


@kopf.on.delete(API_GROUP, API_VERSION, KIND.plural, optional=True)
def forget_project(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.forget_project(project_key(namespace or "", name))
    metrics.forget_resource(KIND.kind, namespace or "", name)
