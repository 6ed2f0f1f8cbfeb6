"""The approval gate, shared by every kind that acts only on what was approved (pure).

InfraDeployment (a plan id), Remediation (an impact assessment digest) and PermissionRequest (an IAM
statement digest) all decide the same way (DESIGN §6):

- an approval names the digest of exactly what it approves; one naming another digest is void;
- a production environment never auto-approves, whatever the spec says;
- a pending request may expire (`expiresAfter`): the thing is then made again and needs a new approval,
  and an approval the operator sees only after the expiry approves nothing;
- a denial wins over everything.

Who may approve is not decided here: the ValidatingAdmissionPolicy in config/admission/approvals.yaml
makes approving a separate RBAC right (the `approve` verb) and binds `approvedBy` to the requesting user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devops_operator.api.common import ApprovalState, ApprovalStatus
from devops_operator.digests import digest
from devops_operator.durations import format_duration
from devops_operator.kube.conditions import rfc3339

APPROVED_CONDITION = "Approved"
AUTO_APPROVER = "auto-approve"


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

    @property
    def approved(self) -> bool:
        return self.state in (ApprovalState.APPROVED, ApprovalState.AUTO_APPROVED)

    @property
    def reason(self) -> str:
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
