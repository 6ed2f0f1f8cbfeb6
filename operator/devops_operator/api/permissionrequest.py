"""PermissionRequest: a least-privilege IAM grant proposed from an AccessDenied error.

The operator creates one when a deployment fails with AccessDenied: the actions and resources parsed
from the error land in the spec, a statement is proposed in status, and the grant is made as an inline
policy on the environment's deploy role, automatically where the project allows auto-grant for that
environment (never in production), otherwise once `spec.approved` is true. Every grant is appended to
the IAM audit trail, and the deployment named in `deploymentRef` retries.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from devops_operator.api.common import (
    APPROVER_DESCRIPTION,
    DURATION_PATTERN,
    ApprovalStatus,
    EnvironmentName,
    KindInfo,
    LocalObjectReference,
    Model,
    PrinterColumn,
    ProjectReference,
    StatusBase,
    frozen_once_approved,
    standard_columns,
)

# `service:Action`, with IAM wildcards allowed in the action part only (`s3:Get*`); a bare `*` is refused.
IAM_ACTION_PATTERN = r"^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$"
# An ARN (wildcards allowed, as IAM allows them) or `*`.
IAM_RESOURCE_PATTERN = r"^(\*|arn:aws[a-zA-Z-]*:.+)$"
IAM_PRINCIPAL_PATTERN = r"^arn:aws[a-zA-Z-]*:(iam|sts)::[0-9]{12}:(role|user|assumed-role)/.+$"
IAM_POLICY_NAME_PATTERN = r"^[A-Za-z0-9+=,.@_-]{1,128}$"

IamAction = Annotated[str, StringConstraints(pattern=IAM_ACTION_PATTERN, max_length=256)]
IamResource = Annotated[str, StringConstraints(pattern=IAM_RESOURCE_PATTERN, max_length=2048)]


PERMISSION_FROZEN_FIELDS = [
    "projectRef", "environment", "errorMessage", "actions", "resources", "principalArn", "condition", "policyName",
]


class PermissionApproval(Model):
    """A decision on the proposed statement, bound to the digest of exactly that statement."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "!(self.approved && self.denied)", "message": "approved and denied cannot both be true"},
                {
                    "rule": "!self.approved || has(self.statementDigest)",
                    "message": "approval.statementDigest is required when approval.approved is true",
                },
            ]
        }
    )

    approved: bool = Field(
        default=False,
        description=(
            "Grant the proposed statement (needed in production and where auto-grant is off); statementDigest "
            "must name status.approval.digest."
        ),
    )
    denied: bool = Field(default=False, description="Refuse the request; nothing is granted.")
    statement_digest: str | None = Field(
        default=None,
        pattern=r"^[a-f0-9]{12,64}$",
        description=(
            "status.approval.digest of the statement approved (principal, actions, resources, condition); a "
            "digest that is not the current statement's grants nothing."
        ),
    )
    approved_by: str | None = Field(default=None, max_length=253, description=APPROVER_DESCRIPTION)
    expires_after: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="How long the statement may wait for approval; past it the request expires.",
    )

    @model_validator(mode="after")
    def _check(self) -> PermissionApproval:
        if self.approved and self.denied:
            raise ValueError("approved and denied cannot both be true")
        if self.approved and not self.statement_digest:
            raise ValueError("approval.statementDigest is required when approval.approved is true")
        return self


class PermissionRequestSpec(Model):
    """The permission asked for, and the human decision on it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.errorMessage) || (has(self.actions) && size(self.actions) > 0)",
                    "message": "set errorMessage or at least one action",
                },
                frozen_once_approved(PERMISSION_FROZEN_FIELDS, "the approval covers the proposed statement"),
            ]
        }
    )

    project_ref: ProjectReference = Field(
        description="The DevOpsProject whose deploy identity needs the grant."
    )
    environment: EnvironmentName = Field(
        description="Environment of the project whose deploy identity receives the grant."
    )
    deployment_ref: LocalObjectReference | None = Field(
        default=None,
        description="The InfraDeployment whose failure raised this request; retried after the grant.",
    )
    error_message: str | None = Field(
        default=None,
        max_length=32_768,
        description="The raw AccessDenied text the request was parsed from, kept verbatim.",
    )
    actions: list[IamAction] = Field(
        default_factory=list,
        max_length=100,
        description="IAM actions to allow, e.g. s3:PutBucketTagging; empty means parsed from errorMessage.",
    )
    resources: list[IamResource] = Field(
        default_factory=list,
        max_length=100,
        description="ARNs the actions apply to (`*` only where the action supports no resource-level scope).",
    )
    principal_arn: str | None = Field(
        default=None,
        pattern=IAM_PRINCIPAL_PATTERN,
        description="Identity that was denied; defaults to the environment's deploy role.",
    )
    condition: dict[str, Any] | None = Field(
        default=None,
        description=(
            "IAM Condition block added to the statement, e.g. "
            '{"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}.'
        ),
    )
    policy_name: str | None = Field(
        default=None,
        pattern=IAM_POLICY_NAME_PATTERN,
        description="Name of the inline policy to write; defaults to one derived from the request's name.",
    )
    approval: PermissionApproval = Field(
        default_factory=lambda: PermissionApproval(),
        description="The decision on the proposed statement, bound to its digest.",
    )
    reason: str | None = Field(
        default=None,
        max_length=2048,
        description="Why the permission is needed (recorded in the audit trail).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PermissionRequestSpec:
        if self.error_message is None and not self.actions:
            raise ValueError("set errorMessage or at least one action")
        return self


class PermissionRequestPhase(StrEnum):
    PENDING = "Pending"
    PROPOSED = "Proposed"
    AWAITING_APPROVAL = "AwaitingApproval"
    GRANTED = "Granted"
    DENIED = "Denied"
    FAILED = "Failed"
    STALLED = "Stalled"


class StatementEffect(StrEnum):
    ALLOW = "Allow"


class PolicyStatement(Model):
    """One IAM policy statement."""

    sid: str | None = Field(default=None, description="Statement id.")
    effect: StatementEffect = Field(
        default=StatementEffect.ALLOW, description="Always Allow: a grant only ever adds permissions."
    )
    action: list[str] = Field(max_length=100, description="IAM actions.")
    resource: list[str] = Field(max_length=100, description="Resource ARNs.")
    condition: dict[str, Any] | None = Field(default=None, description="IAM Condition block.")


class PermissionRequestStatus(StatusBase):
    """Observed state of a PermissionRequest, written by the operator."""

    phase: PermissionRequestPhase | None = Field(default=None, description="Lifecycle phase.")
    error_code: str | None = Field(
        default=None,
        description="AWS error code parsed from the message (AccessDenied, UnauthorizedOperation).",
    )
    proposed_statement: PolicyStatement | None = Field(
        default=None, description="The least-privilege statement proposed (and granted once approved)."
    )
    policy_document: str | None = Field(
        default=None, description="The exact IAM policy document (JSON) that is or will be attached."
    )
    policy_name: str | None = Field(default=None, description="Name of the inline policy.")
    role_name: str | None = Field(default=None, description="IAM role the inline policy is attached to.")
    approval: ApprovalStatus | None = Field(
        default=None,
        description=(
            "The approval gate: the statement digest an approval must name, and who approved (AutoApproved "
            "where the project's auto-grant policy allowed it)."
        ),
    )
    granted_at: str | None = Field(default=None, description="When the policy was attached (RFC 3339).")
    audit_entry_id: str | None = Field(default=None, description="Id of the entry in the IAM audit trail.")
    deployment_retried_at: str | None = Field(
        default=None, description="When the deployment in deploymentRef was asked to retry (RFC 3339)."
    )


KIND = KindInfo(
    kind="PermissionRequest",
    plural="permissionrequests",
    singular="permissionrequest",
    short_names=["preq"],
    description=(
        "A least-privilege IAM grant proposed from an AccessDenied error, granted automatically where the "
        "project allows it, else after approval; every grant lands in the IAM audit trail."
    ),
    spec=PermissionRequestSpec,
    status=PermissionRequestStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Env", json_path=".spec.environment"),
        PrinterColumn(name="Actions", json_path=".spec.actions", priority=1),
        PrinterColumn(name="Approved", json_path=".spec.approval.approved", type="boolean"),
    ),
)
