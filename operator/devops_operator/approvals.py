"""The approval gate, shared by every kind that acts only on what was approved (pure).

InfraDeployment (a plan id), Remediation (an impact assessment digest) and PermissionRequest (an IAM
statement digest) all decide the same way (DESIGN §6):

- an approval names the digest of exactly what it approves; one naming another digest is void;
- a production environment never auto-approves, whatever the spec says;
- a pending request may expire (`expiresAfter`; in production after PRODUCTION_EXPIRY when none is set):
  the thing is then made again and needs a new approval, and an approval the operator sees only after the
  expiry approves nothing;
- a denial wins over everything.

Who may approve is decided by the ValidatingAdmissionPolicies in config/admission/ (approving is a separate
RBAC right, the `approve` verb, and `approvedBy` is the requesting user). `safeguard` adds what the operator
itself can check on top of a manual approval: that those policies are installed where the platform team
requires them, and the two-person rule (the approver is not who last changed the spec).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from devops_operator.api.common import ApprovalState, ApprovalStatus
from devops_operator.digests import digest
from devops_operator.durations import format_duration
from devops_operator.kube.conditions import rfc3339

APPROVED_CONDITION = "Approved"
AUTO_APPROVER = "auto-approve"
# A production request waits at most this long for approval unless expiresAfter says otherwise.
PRODUCTION_EXPIRY = timedelta(hours=24)

# The two-person rule (config/admission/distinct-approver.yaml): the spec's author, as admission records it,
# and the namespace label that switches the rule on.
SPEC_CHANGED_BY_ANNOTATION = "devops.fractary.io/spec-changed-by"
DISTINCT_APPROVER_LABEL = "devops.fractary.io/require-distinct-approver"

# Why a manual approval was refused (the `Approved` condition's reason, an Event, a metric label).
POLICY_NOT_ENFORCED = "ApprovalPolicyNotEnforced"
SAME_APPROVER = "SameApprover"
SPEC_AUTHOR_UNKNOWN = "SpecAuthorUnknown"
REFUSALS = frozenset({POLICY_NOT_ENFORCED, SAME_APPROVER, SPEC_AUTHOR_UNKNOWN})


def expiry(expires_after: timedelta | None, production: bool) -> timedelta | None:
    """How long a request may wait: what the spec says; in production PRODUCTION_EXPIRY when it says nothing."""
    if expires_after is not None:
        return expires_after
    return PRODUCTION_EXPIRY if production else None


@dataclass(frozen=True)
class ApprovalRequest:
    """What waits for approval, as the controller knows it."""

    subject: str  # "plan", "impact assessment", "IAM statement": for messages
    digest: str
    requested_at: datetime
    production: bool
    auto_allowed: bool  # the environment's policy allows approving this without a person
    expires_after: timedelta | None = None
    how_to_approve: str = ""


@dataclass(frozen=True)
class GivenApproval:
    """What the spec says: the digest an approval names (None when there is none), and by whom."""

    digest: str | None = None
    approved_by: str | None = None
    denied: bool = False


@dataclass(frozen=True)
class ApprovalDecision:
    state: ApprovalState
    message: str
    approved_by: str | None = None
    expires_at: datetime | None = None
    refused: str | None = None  # a manual approval given but refused by a safeguard: why (a reason)

    @property
    def approved(self) -> bool:
        return self.state in (ApprovalState.APPROVED, ApprovalState.AUTO_APPROVED)

    @property
    def reason(self) -> str:
        if self.refused:
            return self.refused
        return {
            ApprovalState.PENDING: "AwaitingApproval",
            ApprovalState.APPROVED: "Approved",
            ApprovalState.AUTO_APPROVED: "AutoApproved",
            ApprovalState.VOID: "DigestMismatch",
            ApprovalState.EXPIRED: "ApprovalExpired",
            ApprovalState.DENIED: "Denied",
        }[self.state]

    def condition(self) -> tuple[str, str, str, str]:
        """The `Approved` condition (type, status, reason, message) for `Outcome.domain_conditions`."""
        return (APPROVED_CONDITION, "True" if self.approved else "False", self.reason, self.message)

    def status(self, request: ApprovalRequest, now: datetime, previous: ApprovalStatus | None = None) -> ApprovalStatus:
        """`status.approval`; the time an approval was first seen is kept across reconciliations."""
        approved_at = None
        if self.approved:
            kept = previous is not None and previous.digest == request.digest and previous.approved_at
            approved_at = previous.approved_at if kept and previous is not None else rfc3339(now)
        return ApprovalStatus(
            state=self.state,
            digest=request.digest,
            requested_at=rfc3339(request.requested_at),
            expires_at=rfc3339(self.expires_at) if self.expires_at else None,
            approved_by=self.approved_by,
            approved_at=approved_at,
            message=self.message,
        )


def decide(request: ApprovalRequest, given: GivenApproval, now: datetime) -> ApprovalDecision:
    """Whether `request` may proceed now, and why (or why not)."""
    expires_at = request.requested_at + request.expires_after if request.expires_after else None
    names_this = given.digest == request.digest
    if given.denied and (names_this or given.digest is None):
        return ApprovalDecision(ApprovalState.DENIED, f"the {request.subject} {request.digest} was denied",
                                given.approved_by)
    if request.auto_allowed and not request.production:
        return ApprovalDecision(
            ApprovalState.AUTO_APPROVED,
            f"the {request.subject} {request.digest} is approved by the environment's auto-approval policy",
            AUTO_APPROVER,
        )
    if expires_at is not None and request.expires_after is not None and now >= expires_at:
        waited = format_duration(request.expires_after)
        return ApprovalDecision(
            ApprovalState.EXPIRED,
            f"the {request.subject} {request.digest} waited longer than expiresAfter ({waited}) for approval: "
            "it is made again and needs a new approval",
            None, expires_at,
        )
    if names_this and not given.denied:
        who = given.approved_by or "an approver who did not give a name"
        return ApprovalDecision(ApprovalState.APPROVED, f"the {request.subject} {request.digest} was approved by {who}",
                                given.approved_by, expires_at)
    production = " (a production environment: nothing proceeds without an approval)" if request.production else ""
    hint = f": {request.how_to_approve}" if request.how_to_approve else ""
    if given.digest is not None:
        return ApprovalDecision(
            ApprovalState.VOID,
            f"the approval names {given.digest}, but the current {request.subject} is {request.digest}: what "
            f"it approved has changed, so it approves nothing{production}; approve the current one{hint}",
            None, expires_at,
        )
    return ApprovalDecision(
        ApprovalState.PENDING, f"waiting for approval of {request.subject} {request.digest}{production}{hint}",
        None, expires_at,
    )


@dataclass(frozen=True)
class Safeguards:
    """What the operator checks of a manual approval beyond the digest (plain data, read by the controller)."""

    policy_required: bool = False  # the platform team requires the admission policies here
    policy_enforced: bool = True  # they are installed (False also when the operator cannot tell)
    policy_message: str = ""  # what was found (the ApprovalPolicyEnforced condition's message)
    distinct_approver: bool = False  # the two-person rule is on here
    distinct_where: str = ""  # where it was switched on, for messages
    spec_changed_by: str | None = None  # the spec's author, as the admission-checked annotation records it


def safeguard(decision: ApprovalDecision, guards: Safeguards) -> ApprovalDecision:
    """A manual approval the safeguards refuse approves nothing: still pending, with the reason and the fix.
    Auto-approvals, pending, void, expired and denied decisions pass through unchanged."""
    if decision.state != ApprovalState.APPROVED:
        return decision
    who = decision.approved_by or "an unnamed approver"
    refused, why = None, ""
    if guards.policy_required and not guards.policy_enforced:
        refused = POLICY_NOT_ENFORCED
        why = (f"the operator is configured to accept manual approvals here only while the approval admission "
               f"policies are enforced, and {guards.policy_message}; nothing is applied until they are")
    elif guards.distinct_approver and not guards.spec_changed_by:
        refused = SPEC_AUTHOR_UNKNOWN
        why = (f"the two-person rule is on ({guards.distinct_where}) and nobody is recorded as the spec's author "
               f"(metadata.annotations['{SPEC_CHANGED_BY_ANNOTATION}']): whoever changes the spec sets it to "
               "their own user name, then someone else approves")
    elif guards.distinct_approver and guards.spec_changed_by == decision.approved_by:
        refused = SAME_APPROVER
        why = (f"the two-person rule is on ({guards.distinct_where}) and {who} last changed the spec "
               f"({SPEC_CHANGED_BY_ANNOTATION}): another user must approve (spec.approval.approvedBy)")
    if refused is None:
        return decision
    return replace(decision, state=ApprovalState.PENDING, approved_by=None, refused=refused,
                   message=f"the approval by {who} is refused: {why}")


def statement_digest(
    principal: str, actions: Sequence[str], resources: Sequence[str], condition: Mapping[str, Any] | None
) -> str:
    """The digest a PermissionRequest's approval names: who gets which actions on which resources, under
    which condition. Order does not matter to IAM, so it does not matter here; anything else does."""
    return digest({
        "principal": principal,
        "actions": sorted(set(actions)),
        "resources": sorted(set(resources)),
        "condition": dict(condition or {}),
    })
