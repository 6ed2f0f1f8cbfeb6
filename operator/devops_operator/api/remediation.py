"""Remediation: one corrective action on one resource, assessed, approved, acted on and verified.

The actions themselves (what each does per resource type, its parameters, inverse, interruption and
IAM permissions) are the registry in actions.py, shared with a HealthCheck's remediation policy.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from devops_operator.api.actions import (
    InterruptionLevel,
    RemediationAction,
    RemediationParameters,
    action_problems,
    target_problems,
)
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
    ResourceType,
    StatusBase,
    frozen_once_approved,
    standard_columns,
)
from devops_operator.api.healthcheck import AwsRegion, Rfc3339Time, Verdict

DIGEST_PATTERN = r"^[a-f0-9]{12,64}$"


class RemediationPhase(StrEnum):
    PENDING = "Pending"
    ASSESSING = "Assessing"
    AWAITING_APPROVAL = "AwaitingApproval"
    ACTING = "Acting"
    VERIFYING = "Verifying"
    ROLLING_BACK = "RollingBack"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    ASSESSED = "Assessed"  # a dry run: assessed, nothing acted on
    STALLED = "Stalled"


class RemediationTarget(Model):
    """The resource acted on; it must belong to the project and environment."""

    type: ResourceType = Field(description="Resource type (the action must support it).")
    id: str = Field(
        min_length=1,
        max_length=2048,
        description="Function name (lambda), service name (ecs-service), DB instance id (rds), or an ARN.",
    )
    cluster: str | None = Field(
        default=None, min_length=1, max_length=255, description="ECS cluster name (required for ecs-service)."
    )
    alias: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[a-zA-Z0-9_-]*[a-zA-Z_-][a-zA-Z0-9_-]*$",
        description="Lambda alias (lambda only; required to roll back a function).",
    )
    region: AwsRegion | None = Field(
        default=None, description="AWS region of the resource; defaults to the environment's region."
    )

    @model_validator(mode="after")
    def _check(self) -> RemediationTarget:
        if self.type == ResourceType.ECS_SERVICE and not self.cluster:
            raise ValueError("target.cluster is required for an ecs-service")
        if self.type != ResourceType.ECS_SERVICE and self.cluster is not None:
            raise ValueError(f"target.cluster applies only to ecs-service, not {self.type}")
        if self.type != ResourceType.LAMBDA and self.alias is not None:
            raise ValueError(f"target.alias applies only to lambda, not {self.type}")
        return self


class Approval(Model):
    """An approval bound to the impact assessment the approver saw."""

    required: bool = Field(
        default=False,
        description="Wait for approval outside production too (production always waits for one).",
    )
    approved: bool = Field(default=False, description="The action may proceed.")
    assessment_digest: str | None = Field(
        default=None,
        pattern=DIGEST_PATTERN,
        description=(
            "status.impact.digest of the assessment approved; an approval whose digest differs from the "
            "current assessment is void (the state changed since it was seen)."
        ),
    )
    approved_by: str | None = Field(default=None, max_length=253, description=APPROVER_DESCRIPTION)
    expires_after: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description=(
            "How long an assessment may wait for approval, e.g. 1h; past it the assessment is made again "
            "(a new digest) and needs a new approval. Unset: 24h in a production environment; elsewhere it "
            "waits until approved."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> Approval:
        if self.approved and not self.assessment_digest:
            raise ValueError("approval.assessmentDigest is required when approval.approved is true")
        return self


class Verification(Model):
    """How the result is checked after acting."""

    enabled: bool = Field(default=True, description="false: Succeeded right after the action, unverified.")
    health_check_ref: LocalObjectReference | None = Field(
        default=None,
        description=(
            "HealthCheck whose settings judge the target (its metric overrides and the target's, its missingData) "
            "over the whole minutes since the action; omitted: the health evaluator's built-in defaults for the "
            "resource type."
        ),
    )
    delay: str = Field(
        default="1m", pattern=DURATION_PATTERN, description="Wait after the action before the first check."
    )
    timeout: str = Field(
        default="10m",
        pattern=DURATION_PATTERN,
        description="How long the target may take to pass after the action before verification fails.",
    )
    accept_degraded: bool = Field(
        default=False, description="Count DEGRADED as passing (HEALTHY always does)."
    )
    rollback_on_failure: bool = Field(
        default=True, description="Undo the action when verification fails, where the action has an inverse."
    )


class RemediationSource(Model):
    """What created a Remediation (set by a HealthCheck's remediation policy)."""

    health_check: str = Field(min_length=1, max_length=253, description="Name of the HealthCheck.")
    verdict: Verdict | None = Field(default=None, description="The target's verdict that triggered it.")
    detected_at: Rfc3339Time | None = Field(default=None, description="When that verdict was observed.")


REMEDIATION_FROZEN_FIELDS = ["projectRef", "environment", "target", "action", "parameters", "dryRun"]


class RemediationSpec(Model):
    """Frozen once approved (a CEL rule): what was assessed and approved is exactly what is acted on."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                frozen_once_approved(REMEDIATION_FROZEN_FIELDS, "the approval covers the assessed action")
            ]
        }
    )

    project_ref: ProjectReference = Field(description="The DevOpsProject the target belongs to.")
    environment: EnvironmentName
    target: RemediationTarget = Field(description="The resource acted on.")
    action: RemediationAction = Field(description="What to do: restart, scale, rollback or reboot.")
    parameters: RemediationParameters = Field(
        default_factory=RemediationParameters, description="Parameters of the action."
    )
    reason: str = Field(
        min_length=1, max_length=1024, description="Why (written to the remediation log and Events)."
    )
    dry_run: bool = Field(default=False, description="Assess only: act on nothing.")
    approval: Approval = Field(default_factory=Approval, description="Approval of the assessed action.")
    verification: Verification = Field(default_factory=Verification, description="Post-action verification.")
    source: RemediationSource | None = Field(
        default=None, description="Set when a HealthCheck's policy created this Remediation."
    )

    @model_validator(mode="after")
    def _check(self) -> RemediationSpec:
        problems = action_problems(self.action, self.parameters, self.target.type)
        problems += target_problems(self.action, self.target.type, self.target.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --- status ----------------------------------------------------------------------------------------


class ImpactChange(Model):
    attribute: str = Field(description="What changes, e.g. desiredCount, taskDefinition, alias version.")
    current: str | None = Field(default=None, description="Its value now.")
    proposed: str | None = Field(default=None, description="Its value after the action.")


class ImpactAssessment(Model):
    summary: str = Field(description="One line: what the action will do to what.")
    changes: list[ImpactChange] = Field(
        default_factory=list, max_length=20, description="Each attribute the action changes."
    )
    expected_interruption: str = Field(default="", description="What users of the service will notice.")
    interruption_level: InterruptionLevel | None = Field(default=None, description="That, as a level.")
    current_state: dict[str, str] = Field(
        default_factory=dict, description="The resource's state the assessment is based on."
    )
    reversible: bool | None = Field(default=None, description="Whether the action can be rolled back.")
    production: bool | None = Field(default=None, description="Whether the environment is production.")
    approval_required: bool | None = Field(default=None, description="Whether the action waits for approval.")
    ownership: str | None = Field(
        default=None,
        description="How the target was found to belong to the project: its registry, naming pattern or tags.",
    )
    digest: str = Field(
        description="Digest of target, action, parameters and current state; spec.approval binds to it."
    )
    assessed_at: str | None = Field(default=None, description="When the assessment was made (RFC 3339).")


class ActionResult(Model):
    intent: str | None = Field(
        default=None,
        description=(
            "Id of the action, written before AWS is called: after an interruption the operator looks for it in "
            "the resource's state instead of acting again."
        ),
    )
    request: dict[str, str] = Field(
        default_factory=dict, description="What the operator asked AWS to change (written before the call)."
    )
    target: RemediationTarget | None = Field(
        default=None,
        description="The target acted on, as the spec said when acting (later edits change nothing of it).",
    )
    action: RemediationAction | None = Field(default=None, description="The action taken.")
    parameters: RemediationParameters | None = Field(default=None, description="Its parameters.")
    started_at: str | None = Field(default=None, description="When the action started (RFC 3339).")
    completed_at: str | None = Field(default=None, description="When it completed (RFC 3339).")
    succeeded: bool | None = Field(default=None, description="Whether AWS accepted and completed the action.")
    message: str = Field(default="", description="What happened.")
    details: dict[str, str] = Field(
        default_factory=dict, description="Identifiers the action produced, e.g. deploymentId, version."
    )
    previous_state: dict[str, str] = Field(
        default_factory=dict, description="The state before the action (what a rollback restores)."
    )


class VerificationResult(Model):
    started_at: str | None = Field(default=None, description="When verification started (RFC 3339).")
    next_check_at: str | None = Field(default=None, description="When the next health check is due (RFC 3339).")
    deadline: str | None = Field(
        default=None, description="When verification fails if the target has not passed by then (RFC 3339)."
    )
    source: str | None = Field(
        default=None, description="What judged the target: the HealthCheck named, or the built-in check."
    )
    completed_at: str | None = Field(default=None, description="When it ended (RFC 3339).")
    verdict: Verdict | None = Field(default=None, description="The target's last verdict.")
    passed: bool | None = Field(default=None, description="Whether verification passed.")
    checks: int = Field(default=0, ge=0, description="Health checks made.")
    reasons: list[str] = Field(
        default_factory=list, max_length=20, description="Why the verdict (from the health check)."
    )
    message: str = Field(default="", description="Summary.")


class RollbackInfo(Model):
    attempted: bool = Field(default=False, description="Whether a rollback was started.")
    action: str | None = Field(default=None, description="The registry's inverse action that undoes it.")
    intent: str | None = Field(default=None, description="Id of the rollback, written before AWS is called.")
    request: dict[str, str] = Field(default_factory=dict, description="What the rollback asked AWS to change.")
    at: str | None = Field(default=None, description="When (RFC 3339).")
    succeeded: bool | None = Field(default=None, description="Whether the previous state was restored.")
    restored: dict[str, str] = Field(default_factory=dict, description="The state restored.")
    message: str = Field(default="", description="What happened, or why no rollback was possible.")


class RemediationStatus(StatusBase):
    phase: RemediationPhase | None = Field(
        default=None,
        description=(
            "Pending, Assessing, AwaitingApproval, Acting, Verifying (RollingBack), then Succeeded, RolledBack or "
            "Failed; Assessed for a dry run; Stalled for a spec that cannot work."
        ),
    )
    impact: ImpactAssessment | None = Field(
        default=None, description="The impact assessment made before acting."
    )
    action_result: ActionResult | None = Field(default=None, description="The outcome of the action.")
    verification: VerificationResult | None = Field(default=None, description="The outcome of verification.")
    rollback: RollbackInfo | None = Field(default=None, description="The rollback, when verification failed.")
    approval: ApprovalStatus | None = Field(
        default=None, description="The approval gate: which assessment digest waits, since when, who approved."
    )
    log_config_map: str | None = Field(
        default=None, description="ConfigMap of the remediation log this remediation was appended to."
    )


KIND = KindInfo(
    kind="Remediation",
    plural="remediations",
    singular="remediation",
    short_names=["rem"],
    description=(
        "One corrective action (restart, scale, rollback, reboot) on one AWS resource: impact assessment, "
        "approval bound to that assessment in production, the action, verification through health, and "
        "rollback where verification fails."
    ),
    spec=RemediationSpec,
    status=RemediationStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Env", json_path=".spec.environment"),
        PrinterColumn(name="Action", json_path=".spec.action"),
        PrinterColumn(name="Target", json_path=".spec.target.id"),
        PrinterColumn(name="Approved", json_path=".spec.approval.approved", type="boolean", priority=1),
        PrinterColumn(name="Digest", json_path=".status.impact.digest", priority=1),
        PrinterColumn(name="Verdict", json_path=".status.verification.verdict", priority=1),
    ),
)
