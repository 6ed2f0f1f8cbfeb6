"""Building blocks shared by every kind: the base model, conditions, references, statuses.

Every spec and status is a pydantic model; `crdgen` renders the CRDs from them, so a field's
description, default, enum and constraints written here are what the API server enforces.
Python attributes are snake_case, the wire format is camelCase (Kubernetes conventions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")

API_GROUP = "devops.fractary.io"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"


class Model(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form written to the Kubernetes API (camelCase, no unset Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """A Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Ready, Reconciling, Stalled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="Machine-readable CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details about the last transition.")
    last_transition_time: str | None = Field(
        default=None, description="When the condition last changed status (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the condition was set for."
    )


class Phase(StrEnum):
    """Human-readable lifecycle phases shared by the kinds (each kind uses the subset it needs)."""

    PENDING = "Pending"
    RECONCILING = "Reconciling"
    READY = "Ready"
    STALLED = "Stalled"
    FAILED = "Failed"


MAX_CONDITIONS = 32
MAX_STATUS_MESSAGE = 4096  # kopf keeps a failed handler's message in an annotation too: keep it small


def max_items(model: type[BaseModel], field: str) -> int:
    """The maxItems a model's list field declares (every status list declares one)."""
    for constraint in model.model_fields[field].metadata:
        limit = getattr(constraint, "max_length", None)
        if isinstance(limit, int):
            return limit
    raise ValueError(f"{model.__name__}.{field} declares no max_length")


def bounded(model: type[BaseModel], field: str, items: Sequence[T]) -> tuple[list[T], bool]:
    """The first items that fit the field's maxItems, and whether any were left out (its `...Truncated` flag).

    Callers order `items` so that what matters most comes first (worst verdicts, largest costs).
    """
    limit = max_items(model, field)
    return list(items[:limit]), len(items) > limit


class StatusBase(Model):
    """Fields every kind's status carries (kstatus conventions read by Argo CD and Flux)."""

    model_config = ConfigDict(extra="allow")

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation that the status reflects."
    )
    phase: str | None = Field(default=None, description="Human-readable lifecycle phase.")
    message: str | None = Field(default=None, description="Human-readable summary of the current state.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Ready, Reconciling and Stalled (kstatus) plus domain conditions.",
    )
    last_reconciled: str | None = Field(default=None, description="When the operator last reconciled (RFC 3339).")


# Setting this annotation to a new value (e.g. a timestamp) asks for a run now, as Flux's
# reconcile.fluxcd.io/requestedAt does; the status records the last value acted on.
REQUESTED_AT_ANNOTATION = f"{API_GROUP}/requested-at"


class OnDemandStatus(StatusBase):
    """Status of a kind that runs on a schedule and on demand (through REQUESTED_AT_ANNOTATION)."""

    last_handled_request: str | None = Field(
        default=None, description=f"The last {REQUESTED_AT_ANNOTATION} annotation value acted on."
    )


APPROVER_DESCRIPTION = (
    "Who approves: the authenticated user making the request. The shipped ValidatingAdmissionPolicy "
    "(config/admission/approvals.yaml) refuses any approval whose approvedBy is not the requesting user "
    "(request.userInfo.username), and approving needs the `approve` verb (docs/security.md)."
)


class ApprovalState(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    AUTO_APPROVED = "AutoApproved"
    VOID = "Void"
    EXPIRED = "Expired"
    DENIED = "Denied"


class ApprovalStatus(Model):
    """The approval gate as the operator sees it: what waits, since when, until when, and who approved."""

    state: ApprovalState = Field(
        description=(
            "Pending (waiting for an approval of `digest`), Approved, AutoApproved (the environment's policy), "
            "Void (an approval names another digest: what it approved changed), Expired or Denied."
        )
    )
    digest: str = Field(description="The digest an approval must name (plan id, assessment or statement digest).")
    requested_at: str | None = Field(default=None, description="When approval was first asked for (RFC 3339).")
    expires_at: str | None = Field(
        default=None, description="When the pending approval expires (spec expiresAfter), if it does."
    )
    approved_by: str | None = Field(default=None, description="Who approved, as the approval names them.")
    approved_at: str | None = Field(default=None, description="When the operator saw the approval (RFC 3339).")
    message: str | None = Field(default=None, description="Why this state, and how to approve.")


def frozen_once_approved(fields: list[str], what: str) -> dict[str, Any]:
    """A CEL transition rule: once the old object's approval.approved is true, these fields cannot change.

    Absent optional fields compare as absent on both sides (`has` on each), so adding or removing one is a
    change too. To change them: set approval.approved to false in one update, then edit.
    """
    same = " && ".join(
        f"(has(self.{f}) == has(oldSelf.{f})) && (!has(self.{f}) || self.{f} == oldSelf.{f})" for f in fields
    )
    approved = "has(oldSelf.approval) && has(oldSelf.approval.approved) && oldSelf.approval.approved"
    return {
        "rule": f"!({approved}) || ({same})",
        "message": (
            f"{', '.join(fields)} are frozen once approval.approved is true ({what}): set approval.approved to "
            "false first, or create a new object"
        ),
    }


class LocalObjectReference(Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the object in the same namespace.")


class NamespacedReference(Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the referenced object.")
    namespace: str | None = Field(
        default=None, description="Namespace of the referenced object; defaults to the referrer's namespace."
    )


class SecretKeyReference(Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret in the same namespace.")
    key: str = Field(min_length=1, description="Key inside the Secret.")


class LabelSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(Model):
    """One requirement of a label selector (metav1.LabelSelectorRequirement)."""

    key: str = Field(min_length=1, max_length=317, description="The label key the requirement applies to.")
    operator: LabelSelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Values for In and NotIn (non-empty there); empty for Exists and DoesNotExist.",
    )


class LabelSelector(Model):
    """A Kubernetes label selector (metav1.LabelSelector); an empty selector matches everything."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must all be present with exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Requirements that must all hold."
    )

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == LabelSelectorOperator.IN and not (present and labels[req.key] in req.values):
                return False
            if req.operator == LabelSelectorOperator.NOT_IN and present and labels[req.key] in req.values:
                return False
            if req.operator == LabelSelectorOperator.EXISTS and not present:
                return False
            if req.operator == LabelSelectorOperator.DOES_NOT_EXIST and present:
                return False
        return True


class ProjectReference(Model):
    """Which DevOpsProject (and environment) an object belongs to."""

    name: str = Field(min_length=1, max_length=253, description="Name of the DevOpsProject.")
    namespace: str | None = Field(
        default=None, description="Namespace of the DevOpsProject; defaults to the referrer's namespace."
    )


class PrinterColumn(BaseModel):
    """An additionalPrinterColumns entry: what `kubectl get` shows."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


class KindInfo(BaseModel):
    """What crdgen needs to know about a kind beyond its spec and status models."""

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    description: str
    spec: type[Model]
    status: type[StatusBase]
    printer_columns: list[PrinterColumn] = Field(default_factory=list)
    namespaced: bool = True
    categories: list[str] = Field(default_factory=lambda: ["devops"])

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{API_GROUP}"

    @property
    def api_version(self) -> str:
        return GROUP_VERSION


def standard_columns(*extra: PrinterColumn) -> list[PrinterColumn]:
    """Ready and Status first, the kind's own columns, then Age: the same look for every kind."""
    return [
        PrinterColumn(name="Ready", json_path='.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn(name="Phase", json_path=".status.phase"),
        *extra,
        PrinterColumn(
            name="Message", json_path='.status.conditions[?(@.type=="Ready")].message', priority=1
        ),
        PrinterColumn(name="Age", json_path=".metadata.creationTimestamp", type="date"),
    ]


# A DNS label: lower-case words joined by dashes. Environment, project and subsystem names use it
# because they end up inside AWS resource names and Kubernetes labels.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENVIRONMENT_PATTERN = DNS_LABEL_PATTERN
AWS_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"

EnvironmentName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=ENVIRONMENT_PATTERN,
        description="Environment to operate in: a name from the DevOpsProject's spec.environments.",
    ),
]
"""An environment's name, as DevOpsProject defines it and every other kind refers to it.

A field may give its own description (`environment: EnvironmentName = Field(description=...)`);
the constraints stay these.
"""


class ErrorCategory(StrEnum):
    """What kind of failure an error is: the categories of the issue log, shared by every classifier."""

    PERMISSION = "permission"
    CREDENTIALS = "credentials"
    CONFIG = "config"
    RESOURCE = "resource"
    STATE = "state"
    NETWORK = "network"
    QUOTA = "quota"
    THROTTLING = "throttling"
    DEPENDENCY = "dependency"
    UNKNOWN = "unknown"


class ResourceType(StrEnum):
    """AWS resource types the runtime operations understand."""

    LAMBDA = "lambda"
    RDS = "rds"
    ECS_SERVICE = "ecs-service"
    APIGATEWAY_REST = "apigateway-rest"
    APIGATEWAY_HTTP = "apigateway-http"
    S3 = "s3"
    DYNAMODB = "dynamodb"
    SQS = "sqs"

# Five cron fields (minute hour day-of-month month day-of-week) or a macro, as CronJobs accept them.
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4}\S+)$"

# Go-style durations as Flux and Argo CD write them: `30s`, `5m`, `1h30m`, `7d`.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
