"""Building blocks shared by every kind: the base model, conditions, references, statuses.

Every spec and status is a pydantic model; `crdgen` renders the CRDs from them, so a field's
description, default, enum and constraints written here are what the API server enforces.
Python attributes are snake_case, the wire format is camelCase (Kubernetes conventions).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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

# Go-style durations as Flux and Argo CD write them: `30s`, `5m`, `1h30m`, `7d`.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
