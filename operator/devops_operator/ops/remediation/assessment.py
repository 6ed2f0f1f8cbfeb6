"""The impact assessment made before acting, and its digest (pure).

The digest covers what an approver sees and what the action depends on: the target, the action, its
parameters and the resource's current state (digests.py's canonical form). When an approval may expire
(`spec.approval.expiresAfter`, and always in production: approvals.expiry), the assessment's time is part
of it too: an expired assessment is made again with a new digest, so an approval of the old one can never
approve the new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from devops_operator.api.actions import spec_of
from devops_operator.api.remediation import ImpactAssessment, ImpactChange, RemediationSpec
from devops_operator.aws.executors import Plan
from devops_operator.digests import short_digest
from devops_operator.kube.conditions import rfc3339


def assessment_digest(spec: RemediationSpec, state: Mapping[str, str], assessed_at: str | None,
                      production: bool = False) -> str:
    subject: dict[str, Any] = {
        "target": spec.target.to_wire(),
        "action": str(spec.action),
        "parameters": spec.parameters.to_wire(),
        "state": dict(state),
    }
    if (spec.approval.expires_after or production) and assessed_at:
        subject["assessedAt"] = assessed_at
    return short_digest(subject)


def _build(spec: RemediationSpec, state: Mapping[str, str], plan: Plan, *, production: bool,
           ownership: str, assessed_at: str) -> ImpactAssessment:
    action = spec_of(spec.action)
    target = action.target(spec.target.type)
    assert target is not None  # the spec's validation refused an action the type does not support
    changes = [ImpactChange(attribute=c.attribute, current=c.current, proposed=c.proposed) for c in plan.changes]
    what = "; ".join(f"{c.attribute} {c.current} -> {c.proposed}" for c in plan.changes)
    return ImpactAssessment(
        summary=f"{action.name} {spec.target.type} {spec.target.id}: {target.effect} ({what})",
        changes=changes,
        expected_interruption=f"{target.interruption}: {target.effect}",
        interruption_level=target.interruption,
        current_state=dict(state),
        reversible=action.reversible,
        production=production,
        approval_required=production or spec.approval.required,
        ownership=ownership,
        digest=assessment_digest(spec, state, assessed_at, production),
        assessed_at=assessed_at,
    )


def assess(spec: RemediationSpec, state: Mapping[str, str], plan: Plan, *, production: bool, ownership: str,
           now: datetime, previous: ImpactAssessment | None, expired: bool = False) -> ImpactAssessment:
    """The assessment to show: the previous one when nothing it covers has changed (and it has not expired),
    so its digest, and an approval naming it, stay valid; a new one otherwise."""
    if previous is not None and previous.assessed_at and not expired:
        kept = _build(spec, state, plan, production=production, ownership=ownership, assessed_at=previous.assessed_at)
        if kept.digest == previous.digest:
            return kept
    return _build(spec, state, plan, production=production, ownership=ownership, assessed_at=rfc3339(now))


def approve_command(namespace: str, name: str, digest: str, approver: str = "<your user name>",
                    kubectl: str = "kubectl") -> str:
    """The kubectl line that approves exactly this assessment."""
    body = {"spec": {"approval": {"approved": True, "assessmentDigest": digest, "approvedBy": approver}}}
    patch = json.dumps(body, separators=(",", ":"))
    return f"{kubectl} -n {namespace} patch remediation {name} --type merge -p '{patch}'"
