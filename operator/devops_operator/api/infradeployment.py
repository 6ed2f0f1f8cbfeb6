"""InfraDeployment: one Terraform root module deployed to one environment of a DevOpsProject.

The lifecycle (DESIGN §3): the source is fetched inside a runner Job, planned, summarised, tested
(pre-deployment gate), approved (automatically where the environment allows it, otherwise by writing
the plan id into `spec.approval.planId`), applied exactly as planned, verified, registered, and its
outputs published. Day 2: drift detection runs detect-only plans on an interval; `dependsOn` waits for
other deployments; the environment's change windows hold applies; `suspend` starts no Job; annotations
ask for a re-plan, a drift check, a lock release or abandoning a deletion now; `destroyOnDelete`
destroys through a finalizer from the inputs snapshotted at apply time.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from devops_operator.api.common import (
    APPROVER_DESCRIPTION,
    DURATION_PATTERN,
    OBJECT_NAME_PATTERN,
    ApprovalStatus,
    EnvironmentName,
    ErrorCategory,
    KindInfo,
    LocalObjectReference,
    Model,
    NamespacedReference,
    PrinterColumn,
    ProjectReference,
    SecretKeyReference,
    StatusBase,
    standard_columns,
)
from devops_operator.api.devopsproject import TerraformBackend, TerraformEngine
from devops_operator.durations import parse_duration

# A Kubernetes object name (DNS subdomain, RFC 1123).
# A resource quantity as Kubernetes writes it: `500m`, `1`, `512Mi`, `2Gi`.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
# One or more comma-separated Terraform version constraints: `1.9.8`, `>= 1.5, < 2.0`, `~> 1.9`.
TERRAFORM_VERSION_PATTERN = (
    r"^\s*(=|!=|>=|<=|>|<|~>)?\s*[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.]+)?"
    r"(\s*,\s*(=|!=|>=|<=|>|<|~>)?\s*[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.]+)?)*\s*$"
)
# A relative path inside the source: no leading slash (`..` components are refused by a validator).
RELATIVE_PATH_PATTERN = r"^([^/].*)?$"
# Inline sources live in the object itself, and kubectl's last-applied annotation copies them once more:
# bounded well below the 256 KiB annotation limit and the ~1.5 MiB object limit.
# The shortest spec.interval: how often, at most, the operator asks a git host for a branch's head.
MIN_INTERVAL = "30s"
MAX_INLINE_FILES = 50
MAX_INLINE_BYTES = 64 * 1024
# Plan ids as the operator writes them into status.plan.id (lower-case, short).
PLAN_ID_PATTERN = r"^[a-z0-9][-a-z0-9]{0,62}$"

# On-demand operations, the Kubernetes way (as Flux's `reconcile.fluxcd.io/requestedAt`): any new value
# of the annotation asks once; status.handled records the value acted on. A subdomain of their own: kopf
# ignores changes to annotations under its persistence prefix (devops.fractary.io/), so these would not
# reach the handlers there.
REPLAN_ANNOTATION = "deploy.devops.fractary.io/replan-requested-at"
DRIFT_CHECK_ANNOTATION = "deploy.devops.fractary.io/drift-check-requested-at"
# The value is the id of the lock to release (status.lock.id): it names exactly what is released.
RELEASE_LOCK_ANNOTATION = "deploy.devops.fractary.io/release-lock"
# "true" while the object is being deleted: release the finalizer without destroying, recorded in the
# registry and an Event.
ABANDON_ANNOTATION = "deploy.devops.fractary.io/abandon"
# Who asked for a release or an abandon (admission checks it is the requesting user; see config/admission).
REQUESTED_BY_ANNOTATION = "deploy.devops.fractary.io/requested-by"
DESTROY_FINALIZER = "devops.fractary.io/destroy-on-delete"


def _check_relative_path(value: str, what: str) -> str:
    """Refuse absolute paths and `..` components: a source can never escape its workspace."""
    if value.startswith("/"):
        raise ValueError(f"{what} must be relative to the source root, got {value!r}")
    if ".." in value.split("/"):
        raise ValueError(f"{what} must not contain '..' components, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------------------


class GitReference(Model):
    """Which revision of a git repository to deploy: at most one of branch, tag or commit."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "(has(self.branch) ? 1 : 0) + (has(self.tag) ? 1 : 0) + "
                        "(has(self.commit) ? 1 : 0) <= 1"
                    ),
                    "message": "set at most one of branch, tag or commit",
                }
            ]
        }
    )

    branch: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Branch to follow; its head is re-resolved every spec.interval (a new head re-plans).",
    )
    tag: str | None = Field(default=None, min_length=1, max_length=255, description="Tag to deploy.")
    commit: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{7,40}$",
        description="Commit SHA to deploy (pins the revision; the source is never re-resolved).",
    )

    @model_validator(mode="after")
    def _at_most_one(self) -> GitReference:
        chosen = [name for name in ("branch", "tag", "commit") if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise ValueError(f"set at most one of branch, tag or commit (got {', '.join(chosen)})")
        return self


class GitSource(Model):
    """A Terraform root module in a git repository, cloned by the runner Job."""

    url: str = Field(
        min_length=1,
        pattern=r"^(https?://|ssh://|git@|file://).+$",
        description="Repository URL: https://, http://, ssh://, git@host:org/repo.git or file:// (tests).",
    )
    ref: GitReference = Field(
        default_factory=GitReference,
        description="Branch, tag or commit to deploy; none set means the remote's default branch (HEAD).",
    )
    path: str = Field(
        default=".",
        max_length=1024,
        pattern=RELATIVE_PATH_PATTERN,
        description="Directory of the root module inside the repository, relative to its root.",
    )
    credentials_secret_ref: LocalObjectReference | None = Field(
        default=None,
        description=(
            "Secret with the clone credentials: `username` and `password` (an HTTPS token) or "
            "`identity` (an SSH private key) and `known_hosts`."
        ),
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _check_relative_path(value, "path")


class ConfigMapSource(Model):
    """A Terraform module held in a ConfigMap of the deployment's namespace, one file per key."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "Name of the ConfigMap. Each key is a file name; ConfigMap keys cannot hold '/', so a `__` in "
            "a key stands for a directory separator (`modules__vpc__main.tf`)."
        ),
    )
    path: str = Field(
        default=".",
        max_length=1024,
        pattern=RELATIVE_PATH_PATTERN,
        description="Directory (after decoding keys) that holds the root module Terraform runs in.",
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _check_relative_path(value, "path")


class FluxSourceKind(StrEnum):
    GIT_REPOSITORY = "GitRepository"
    OCI_REPOSITORY = "OCIRepository"
    BUCKET = "Bucket"


class FluxSourceReference(Model):
    """A Flux source (source.toolkit.fluxcd.io): the runner downloads its status.artifact and verifies its digest."""

    kind: FluxSourceKind = Field(description="GitRepository, OCIRepository or Bucket.")
    name: str = Field(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN, description="Name of the source.")
    namespace: str | None = Field(default=None, description="Namespace of the source; defaults to the deployment's.")
    path: str = Field(
        default=".",
        max_length=1024,
        pattern=RELATIVE_PATH_PATTERN,
        description="Directory of the root module inside the artifact.",
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _check_relative_path(value, "path")


class DeploymentSource(Model):
    """Where the Terraform module comes from: exactly one of git, configMapRef, inline or sourceRef."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "(has(self.git) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + "
                        "(has(self.inline) ? 1 : 0) + (has(self.sourceRef) ? 1 : 0) == 1"
                    ),
                    "message": "set exactly one of git, configMapRef, inline or sourceRef",
                }
            ]
        }
    )

    git: GitSource | None = Field(default=None, description="A git repository (url, ref, path).")
    config_map_ref: ConfigMapSource | None = Field(
        default=None, description="A ConfigMap whose keys are the module's files."
    )
    source_ref: FluxSourceReference | None = Field(
        default=None, description="A Flux GitRepository, OCIRepository or Bucket whose artifact holds the module."
    )
    inline: dict[Annotated[str, StringConstraints(max_length=256)],
                  Annotated[str, StringConstraints(max_length=MAX_INLINE_BYTES)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INLINE_FILES,
        description=(
            "The module's files written in the spec: file name (relative path, e.g. `main.tf` or "
            f"`modules/vpc/main.tf`) to content. Small modules only: at most {MAX_INLINE_FILES} files and "
            f"{MAX_INLINE_BYTES // 1024} KiB in all, so that the object and its annotations stay well under the "
            "API server's limits; larger modules belong in a ConfigMap or git."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [{
                "rule": f"self.map(k, size(self[k])).sum() <= {MAX_INLINE_BYTES}",
                "message": f"inline files may hold at most {MAX_INLINE_BYTES} characters in all: move the "
                           "module to a ConfigMap (configMapRef) or a git repository",
            }]
        },
    )

    @field_validator("inline")
    @classmethod
    def _inline_paths(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            for filename in value:
                if not filename or filename.endswith("/"):
                    raise ValueError(f"inline file name {filename!r} must name a file")
                _check_relative_path(filename, "inline file name")
            total = sum(len(content) for content in value.values())
            if total > MAX_INLINE_BYTES:
                raise ValueError(
                    f"inline files hold {total} characters, more than {MAX_INLINE_BYTES}: move the module to a "
                    "ConfigMap (configMapRef) or a git repository"
                )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> DeploymentSource:
        chosen = [
            wire
            for wire, value in (
                ("git", self.git),
                ("configMapRef", self.config_map_ref),
                ("inline", self.inline),
                ("sourceRef", self.source_ref),
            )
            if value is not None
        ]
        if len(chosen) != 1:
            got = ", ".join(chosen) if chosen else "none"
            raise ValueError(f"set exactly one of git, configMapRef, inline or sourceRef (got {got})")
        return self


class VarsSourceKind(StrEnum):
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"


class VarsFromSource(Model):
    """Terraform variables read from a ConfigMap or Secret of the deployment's namespace."""

    kind: VarsSourceKind = Field(
        default=VarsSourceKind.CONFIG_MAP,
        description="ConfigMap or Secret (use a Secret for sensitive values).",
    )
    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description="Name of the ConfigMap or Secret.",
    )
    keys: list[str] = Field(
        max_length=200,
        default_factory=list,
        description=(
            "Keys to read; empty reads every key. Each key becomes the variable of the same name, its "
            "value parsed as JSON when it is valid JSON (lists, maps, numbers) and taken as a string "
            "otherwise; a key ending in `.tfvars` or `.tfvars.json` is read as a whole variables file."
        ),
    )
    optional: bool = Field(
        default=False,
        description="A missing object or key is skipped instead of stalling the deployment.",
    )


class ApprovalMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    NON_DESTRUCTIVE = "non-destructive"


class Approval(Model):
    """How a plan is approved before it is applied: an approval names exactly the plan it approves."""

    mode: ApprovalMode = Field(
        default=ApprovalMode.MANUAL,
        description=(
            "manual: apply a plan only once planId names it. auto: apply every plan that passes the "
            "pre-deployment gate, where the environment allows auto-approval. non-destructive: like auto for "
            "plans that delete or replace nothing, like manual for the others. An environment marked "
            "production never auto-applies, whatever the mode: every plan there waits for planId."
        ),
    )
    plan_id: str | None = Field(
        default=None,
        max_length=63,
        pattern=PLAN_ID_PATTERN,
        description=(
            "The approved plan: copy status.plan.id here. The id is derived from the saved plan's content, the "
            "source revision and the inputs, so it names exactly what was reviewed; setting it re-plans nothing, "
            "and an id that is not the current plan's approves nothing (any change re-plans and voids it)."
        ),
    )
    approved_by: str | None = Field(default=None, max_length=253, description=APPROVER_DESCRIPTION)
    expires_after: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description=(
            "How long a plan may wait for approval, e.g. 24h; past it the plan expires, is made again (a new "
            "plan id) and needs a new approval. Unset: 24h in a production environment; elsewhere a plan waits until "
            "approved or replaced."
        ),
    )


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class CheckResult(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


class CheckovSettings(Model):
    """Checkov over the plan JSON and the module's sources (offline; severities from the project's table)."""

    enabled: bool = Field(default=True, description="Run Checkov on every plan.")
    skip_checks: list[str] = Field(
        max_length=200,
        default_factory=list,
        description="Checkov check ids to skip, e.g. CKV_AWS_18 (listed in the report as skipped).",
    )


class LambdaUsageAssumptions(Model):
    """Usage assumed for Lambda functions, whose cost depends on traffic rather than on the plan."""

    monthly_requests: int = Field(default=1_000_000, ge=0, description="Invocations per month per function.")
    average_duration_ms: int = Field(
        default=200,
        ge=1,
        le=900_000,
        description="Average billed duration of one invocation in milliseconds.",
    )
    monthly_gb_seconds: float | None = Field(
        default=None,
        ge=0,
        description=(
            "GB-seconds per month per function; unset computes requests x duration x the planned memory_size."
        ),
    )


class CostEstimateSettings(Model):
    """Monthly cost estimate per resource from the priced catalogue, against the environment's threshold."""

    enabled: bool = Field(default=True, description="Estimate the monthly cost of every plan.")
    lambda_usage: LambdaUsageAssumptions = Field(
        default_factory=LambdaUsageAssumptions, description="Request and GB-second assumptions for Lambda."
    )
    over_threshold_severity: Severity = Field(
        default=Severity.HIGH,
        description="Severity of the finding raised when the estimate exceeds the environment's threshold.",
    )


class NamingCheckSettings(Model):
    """Resource names checked against the DevOpsProject's naming pattern."""

    enabled: bool = Field(default=True, description="Check resource names on every plan.")
    severity: Severity = Field(default=Severity.MEDIUM, description="Severity of a name that does not match.")


class RequiredTagsCheckSettings(Model):
    """Required tags checked on every taggable planned resource."""

    enabled: bool = Field(default=True, description="Check required tags on every plan.")
    tags: list[str] | None = Field(
        max_length=50,
        default=None,
        description="Tag keys every resource must carry; unset uses the DevOpsProject's requiredTags.",
    )
    severity: Severity = Field(default=Severity.HIGH, description="Severity of a missing required tag.")


class PreDeploymentTests(Model):
    """The gate between plan and approval: each check is PASS, WARN or FAIL with findings by severity."""

    enabled: bool = Field(default=True, description="Run the pre-deployment tests on every plan.")
    fail_on: list[Severity] = Field(
        max_length=4,
        default_factory=lambda: [Severity.CRITICAL, Severity.HIGH],
        description="A finding of any of these severities fails the gate, which blocks approval.",
    )
    checkov: CheckovSettings = Field(default_factory=CheckovSettings, description="Checkov settings.")
    cost_estimate: CostEstimateSettings = Field(
        default_factory=CostEstimateSettings, description="Cost estimate settings."
    )
    naming: NamingCheckSettings = Field(
        default_factory=NamingCheckSettings, description="Naming check settings."
    )
    required_tags: RequiredTagsCheckSettings = Field(
        default_factory=RequiredTagsCheckSettings, description="Required-tag check settings."
    )


class PostDeploymentTests(Model):
    """Verification after apply."""

    verify: bool = Field(
        default=True,
        description="Check that every registry resource exists in AWS and spot-check its configuration.",
    )
    health_check_ref: LocalObjectReference | None = Field(
        default=None, description="A HealthCheck whose verdict must be HEALTHY for verification to pass."
    )
    timeout: str = Field(
        default="10m",
        pattern=DURATION_PATTERN,
        description="How long verification may take (including waiting for the HealthCheck) before it fails.",
    )


class DeploymentTests(Model):
    """Pre-deployment tests (before approval) and post-deployment verification (after apply)."""

    pre: PreDeploymentTests = Field(default_factory=PreDeploymentTests, description="Pre-deployment gate.")
    post: PostDeploymentTests = Field(
        default_factory=PostDeploymentTests, description="Post-deployment verification."
    )
    keep_reports: int = Field(
        default=5, ge=1, le=50, description="Test and verification report ConfigMaps kept per deployment."
    )


class DriftDetection(Model):
    """Periodic detect-only plans that compare the real infrastructure with the last applied state."""

    enabled: bool = Field(default=True, description="Run a detect-only plan every interval once Ready.")
    interval: str = Field(
        default="1h", pattern=DURATION_PATTERN, description="Time between drift checks, e.g. 30m, 1h, 1d."
    )
    auto_correct: bool = Field(
        default=False,
        description=(
            "Correct drift with a new plan through the same gate and approval as any plan: applied automatically "
            "only where the environment and spec.approval allow auto-approval, never in production."
        ),
    )


class OutputsSettings(Model):
    """Where Terraform outputs are published (their values never appear in status, Events or logs)."""

    config_map_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description="ConfigMap receiving non-sensitive outputs; defaults to `<metadata.name>-outputs`.",
    )
    secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description="Secret receiving sensitive outputs; unset means sensitive outputs are not exported.",
    )
    names: list[str] = Field(
        max_length=200,
        default_factory=list, description="Outputs to publish; empty publishes every output."
    )


class EnvVar(Model):
    """An environment variable of the runner container."""

    name: str = Field(
        min_length=1, max_length=253, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Variable name."
    )
    value: str | None = Field(default=None, description="Literal value.")
    secret_key_ref: SecretKeyReference | None = Field(
        default=None, description="Value read from a key of a Secret in the deployment's namespace."
    )

    @model_validator(mode="after")
    def _one_value(self) -> EnvVar:
        if (self.value is None) == (self.secret_key_ref is None):
            raise ValueError(f"env {self.name!r}: set exactly one of value or secretKeyRef")
        return self


class RunnerResources(Model):
    """Requests and limits of the runner container (unset keeps the project's)."""

    cpu: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description="CPU request and limit.")
    memory: str | None = Field(
        default=None, pattern=QUANTITY_PATTERN, description="Memory request and limit."
    )
    ephemeral_storage: str | None = Field(
        default=None,
        pattern=QUANTITY_PATTERN,
        description="Ephemeral storage request and limit (providers and .terraform need room).",
    )


class RunnerOverrides(Model):
    """Per-deployment settings of the runner Job. What runs and as whom (image, ServiceAccount, credentials)
    is the project owner's: set in the DevOpsProject's spec.environments[].runner, never here."""

    image: str | None = Field(
        default=None, min_length=1,
        description=(
            "Refused (the deployment is Stalled): the runner image is set by the project owner in the "
            "DevOpsProject's spec.environments[].runner.image (or spec.terraform.runnerImage). Kept so old "
            "objects are refused, not silently changed."
        ),
    )
    resources: RunnerResources = Field(
        default_factory=RunnerResources, description="Runner resources (part of the plan id)."
    )
    service_account_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "Refused (the deployment is Stalled): the runner's ServiceAccounts are set by the project owner in "
            "the DevOpsProject's spec.environments[].runner.serviceAccountName and planServiceAccountName."
        ),
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=60, le=86_400, description="Deadline of one runner Job in seconds (part of the plan id)."
    )
    env: list[EnvVar] = Field(
        max_length=50,
        default_factory=list,
        description=(
            "Extra environment variables, e.g. TF_LOG or provider settings (part of the plan id). Names the "
            "runner sets are refused (AWS_*, DEVOPS_*, KUBERNETES_*, KUBE_*, PYTHON*, LD_*, TF_CLI_ARGS*, "
            "TF_IN_AUTOMATION, TF_INPUT, TF_DATA_DIR, TF_WORKSPACE, TF_CLI_CONFIG_FILE, KUBECONFIG, HOME, PATH, "
            "HOSTNAME); a secretKeyRef may name only a Secret the environment's runner.allowedSecrets lists."
        ),
    )


class RetryPolicy(Model):
    """Retries of steps that failed for a transient reason (throttling, network, a released lock)."""

    max_attempts: int = Field(
        default=3, ge=0, le=10, description="Retries of one step before the deployment is Failed; 0 disables."
    )
    backoff: str = Field(
        default="30s",
        pattern=DURATION_PATTERN,
        description="Delay before the first retry; doubled on each further attempt.",
    )


class InfraDeploymentSpec(Model):
    """Desired state of an InfraDeployment."""

    project_ref: ProjectReference = Field(description="The DevOpsProject this deployment belongs to.")
    environment: EnvironmentName = Field(
        description="Environment of the project to deploy into (one of its spec.environments)."
    )
    source: DeploymentSource = Field(description="The Terraform root module: git, configMapRef or inline.")
    interval: str = Field(
        default="10m",
        pattern=DURATION_PATTERN,
        description=(
            f"How often the source is re-resolved and the deployment reconciled; at least {MIN_INTERVAL} (each "
            "re-resolution of a git branch is a call to its host)."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [{
                # CEL's duration() has no `d`: a value with days is above the floor anyway.
                "rule": f"self.contains('d') || duration(self) >= duration('{MIN_INTERVAL}')",
                "message": f"interval must be at least {MIN_INTERVAL}",
            }]
        },
    )

    @field_validator("interval")
    @classmethod
    def _interval_floor(cls, value: str) -> str:
        if parse_duration(value) < parse_duration(MIN_INTERVAL):
            raise ValueError(f"interval must be at least {MIN_INTERVAL} (got {value}): each re-resolution of a git "
                             "branch is a call to its host")
        return value
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Terraform variables written in the spec (any JSON value). Precedence, lowest first: the "
            "environment's variables, varFiles, varsFrom in order, then these."
        ),
    )
    vars_from: list[VarsFromSource] = Field(
        max_length=20,
        default_factory=list,
        description="ConfigMaps and Secrets supplying variables; values are snapshotted at apply time.",
    )
    var_files: list[str] = Field(
        max_length=20,
        default_factory=list,
        description="Variables files (.tfvars, .tfvars.json) inside the source, relative to the module path.",
    )
    approval: Approval = Field(default_factory=Approval, description="How plans are approved.")
    tests: DeploymentTests = Field(
        default_factory=DeploymentTests, description="Pre-deployment gate and post-deployment verification."
    )
    drift_detection: DriftDetection = Field(default_factory=DriftDetection, description="Drift detection.")
    depends_on: list[NamespacedReference] = Field(
        max_length=20,
        default_factory=list, description="InfraDeployments that must be Ready before this one plans."
    )
    suspend: bool = Field(
        default=False,
        description="Start no Job (plan, apply, drift check, destroy) until unset; a running Job finishes.",
    )
    destroy_on_delete: bool = Field(
        default=False,
        description=(
            "Destroy the managed infrastructure when this object is deleted (through a finalizer), from the "
            "inputs snapshotted at the last apply; production needs the destroy plan approved like any plan. "
            "A deletion that cannot complete is abandoned with the annotation "
            "deploy.devops.fractary.io/abandon=true (recorded in the registry), or by setting this to false."
        ),
    )
    outputs: OutputsSettings = Field(
        default_factory=OutputsSettings, description="Where outputs are published."
    )
    runner: RunnerOverrides = Field(default_factory=RunnerOverrides, description="Runner Job overrides.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retries of transient failures.")
    terraform_version: str | None = Field(
        default=None,
        max_length=128,
        pattern=TERRAFORM_VERSION_PATTERN,
        description=(
            "Terraform version constraint the module needs, e.g. `>= 1.5, < 2.0`; the deployment stalls "
            "when the runner's pinned Terraform does not satisfy it."
        ),
    )
    backend: TerraformBackend | None = Field(
        default=None, description="Override of the DevOpsProject's state backend for this deployment."
    )
    engine: TerraformEngine | None = Field(
        default=None, description="terraform or tofu for this deployment; unset uses the DevOpsProject's choice."
    )

    @field_validator("var_files")
    @classmethod
    def _relative_var_files(cls, value: list[str]) -> list[str]:
        for path in value:
            _check_relative_path(path, "varFiles entry")
        return value


# --------------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------------


class InfraDeploymentPhase(StrEnum):
    PENDING = "Pending"
    WAITING_FOR_DEPENDENCIES = "WaitingForDependencies"
    PLANNING = "Planning"
    TESTING = "Testing"
    AWAITING_APPROVAL = "AwaitingApproval"
    WAITING_FOR_WINDOW = "WaitingForWindow"
    SUSPENDED = "Suspended"
    APPLYING = "Applying"
    VERIFYING = "Verifying"
    READY = "Ready"
    FAILED = "Failed"
    STALLED = "Stalled"
    DESTROYING = "Destroying"
    DELETION_BLOCKED = "DeletionBlocked"


class PlanAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REPLACE = "replace"
    READ = "read"


class PlannedChange(Model):
    """One resource change of a plan (no-ops are left out)."""

    address: str = Field(description="Resource address, e.g. module.vpc.aws_subnet.private[0].")
    action: PlanAction = Field(description="create, update, delete, replace or read.")


class PlanStatus(Model):
    """The current plan."""

    id: str = Field(
        description=(
            "Plan id: a digest of the saved plan's content, the source revision and the inputs digest (never of "
            "metadata.generation or spec.approval); copy it into spec.approval.planId to approve this plan."
        )
    )
    digest: str = Field(
        description="sha256 of the plan's content (resource changes, sensitive values masked)."
    )
    inputs_digest: str | None = Field(
        default=None,
        description=(
            "sha256 of what went into the plan besides the source: variables, varsFrom objects (by "
            "resourceVersion, never by value), var files, backend and Terraform version."
        ),
    )
    generation: int | None = Field(
        default=None, description="The .metadata.generation the plan was made for (informational)."
    )
    source_revision: str | None = Field(
        default=None, description="Source revision planned (git commit, digest)."
    )
    add: int = Field(default=0, ge=0, description="Resources to create.")
    change: int = Field(default=0, ge=0, description="Resources to update in place.")
    destroy: int = Field(default=0, ge=0, description="Resources to destroy.")
    replace: int = Field(
        default=0, ge=0, description="Resources to replace (counted apart from add and destroy)."
    )
    summary: list[PlannedChange] = Field(
        max_length=100,
        default_factory=list,
        description="Changed resources and their actions (bounded; see summaryTruncated).",
    )
    summary_truncated: bool = Field(
        default=False, description="The summary was cut to keep the status small; the artifact has all."
    )
    created_at: str | None = Field(default=None, description="When the plan was made (RFC 3339).")
    artifact_secret: str | None = Field(
        default=None,
        description="Secret holding the saved plan file (gzip; chunks named <name>-<n> past 1 MiB).",
    )
    artifact_chunks: int | None = Field(
        default=None, ge=1, description="Number of Secrets the artifact spans."
    )
    artifact_sha256: str | None = Field(
        default=None, description="sha256 of the stored plan artefact; the apply Job refuses any other."
    )
    request: str | None = Field(
        default=None,
        description=(
            "Digest of what was asked to be planned (source, inputs digest, re-plan count): a spec change gives a "
            "new request and so a new plan; writing spec.approval does not."
        ),
    )
    engine: str | None = Field(default=None, description="Engine that made the plan (terraform, tofu or the stand-in).")


class JobStep(StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    DESTROY = "destroy"
    DRIFT = "drift"


class FailedJob(Model):
    """The last runner Job that failed, kept after its pod is gone."""

    name: str = Field(description="Job name.")
    step: JobStep = Field(description="plan, apply, destroy or drift.")
    reason: str = Field(
        description=(
            "Why it failed: Error, OOMKilled, ImagePullBackOff, DeadlineExceeded, Evicted, Killed, PodDeleted or "
            "Interrupted."
        )
    )
    exit_code: int | None = Field(default=None, description="Exit code of the runner container, when known.")
    log_secret: str | None = Field(
        default=None, description=(
            "Secret keeping the runner's result and the tail of its log (a Secret: the log shows planned values)."
        )
    )
    at: str | None = Field(default=None, description="When the failure was observed (RFC 3339).")


class JobsStatus(Model):
    """Runner Jobs of this deployment."""

    current: str | None = Field(default=None, description="Name of the running Job, if any.")
    step: JobStep | None = Field(default=None, description="Step of the running Job.")
    started_at: str | None = Field(default=None, description="When the running Job started (RFC 3339).")
    last_failed: FailedJob | None = Field(default=None, description="The last failed Job.")


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class LastError(Model):
    """The last failure, categorised and matched against the issue log."""

    category: ErrorCategory = Field(description="Error category.")
    issue_id: str | None = Field(default=None, description="Issue id of the normalised error signature.")
    message: str = Field(description="The error text (secrets and sensitive values masked, bounded).")
    solution: str | None = Field(default=None, description="Best-ranked known solution.")
    confidence: Confidence | None = Field(default=None, description="Confidence in the solution.")
    step: JobStep | None = Field(default=None, description="Step that failed.")
    permission_request: str | None = Field(
        default=None, description="PermissionRequest created for an AccessDenied error."
    )
    at: str | None = Field(default=None, description="When the error happened (RFC 3339).")


class SeverityCounts(Model):
    """Findings by severity."""

    critical: int = Field(default=0, ge=0, description="CRITICAL findings.")
    high: int = Field(default=0, ge=0, description="HIGH findings.")
    medium: int = Field(default=0, ge=0, description="MEDIUM findings.")
    low: int = Field(default=0, ge=0, description="LOW findings.")


class CheckSummary(Model):
    """One pre-deployment check's result."""

    name: str = Field(description="checkov, costEstimate, naming or requiredTags.")
    status: CheckResult = Field(description="PASS, WARN or FAIL.")
    findings: int = Field(default=0, ge=0, description="Number of findings.")
    message: str | None = Field(default=None, description="One-line summary.")


class PreDeploymentSummary(Model):
    """Summary of the last pre-deployment test run (the full report is in a ConfigMap)."""

    status: CheckResult = Field(description="PASS, WARN or FAIL overall.")
    gate_passed: bool = Field(description="No finding of a spec.tests.pre.failOn severity.")
    plan_id: str | None = Field(default=None, description="Plan the tests ran on.")
    counts: SeverityCounts = Field(default_factory=SeverityCounts, description="Findings by severity.")
    checks: list[CheckSummary] = Field(max_length=20, default_factory=list, description="Result of each check.")
    estimated_monthly_cost: float | None = Field(default=None, ge=0, description="Estimated USD per month.")
    unpriced_resources: int = Field(
        default=0, ge=0, description="Planned resources whose type is not in the price catalogue."
    )
    report_config_map: str | None = Field(default=None, description="ConfigMap holding the JSON report.")
    completed_at: str | None = Field(default=None, description="When the tests finished (RFC 3339).")


class VerificationSummary(Model):
    """Summary of the last post-deployment verification."""

    status: CheckResult = Field(description="PASS, WARN or FAIL overall.")
    plan_id: str | None = Field(default=None, description="Applied plan that was verified.")
    checked: int = Field(default=0, ge=0, description="Resources checked.")
    missing: int = Field(default=0, ge=0, description="Resources not found in AWS.")
    failed: int = Field(default=0, ge=0, description="Resources whose configuration spot check failed.")
    health_verdict: str | None = Field(
        default=None, description="Verdict of spec.tests.post.healthCheckRef (HEALTHY, DEGRADED, ...)."
    )
    report_config_map: str | None = Field(default=None, description="ConfigMap holding the JSON report.")
    completed_at: str | None = Field(default=None, description="When verification finished (RFC 3339).")


class DriftedResource(Model):
    """One resource whose real state differs from what was applied."""

    address: str = Field(description="Resource address, e.g. aws_sqs_queue.jobs.")
    action: PlanAction = Field(description="What a plan would do to correct it (create: it was deleted).")
    attributes: list[str] = Field(
        max_length=20, default_factory=list,
        description="Top-level attributes that differ (names only, never values).",
    )
    attributes_truncated: bool = Field(default=False, description="More attributes differ than listed.")


class DriftStatus(Model):
    """Result of the last drift check (a detect-only plan against the last applied inputs)."""

    detected: bool = Field(
        default=False, description="The real infrastructure differs from the applied state."
    )
    count: int = Field(default=0, ge=0, description="Number of drifted resources.")
    resources: list[DriftedResource] = Field(
        max_length=50,
        default_factory=list, description="Drifted resources (bounded; count has the total)."
    )
    resources_truncated: bool = Field(
        default=False, description="More resources drifted than resources holds (count has the total)."
    )
    checks: int = Field(default=0, ge=0, description="Drift checks run since the last apply.")
    job: str | None = Field(default=None, description="The drift check Job running or last run.")
    checked_plan_id: str | None = Field(default=None, description="The applied plan the check compared with.")
    last_checked: str | None = Field(default=None, description="When drift was last checked (RFC 3339).")
    next_check: str | None = Field(default=None, description="When the next check is due (RFC 3339).")
    correction: str | None = Field(
        default=None, description="What was done about the drift: a correcting plan, or why none was made."
    )
    corrected_at: str | None = Field(default=None, description="When drift was last corrected (RFC 3339).")


class OutputsStatus(Model):
    """Where outputs were published: object and output names only, never values."""

    config_map_name: str | None = Field(default=None, description="ConfigMap holding non-sensitive outputs.")
    secret_name: str | None = Field(default=None, description="Secret holding sensitive outputs.")
    names: list[str] = Field(max_length=200, default_factory=list, description="Names of the published outputs.")
    names_truncated: bool = Field(default=False, description="More outputs were published than names holds.")
    sensitive_names: list[str] = Field(
        max_length=200,
        default_factory=list, description="Names of the sensitive outputs (in the Secret, or not exported)."
    )
    sensitive_names_truncated: bool = Field(
        default=False, description="There are more sensitive outputs than sensitiveNames holds."
    )


class StateStatus(Model):
    """Where the Kubernetes backend keeps this deployment's state (names only)."""

    namespace: str = Field(description="Namespace of the state Secret and the lock Lease.")
    secret_suffix: str = Field(description="The backend's secret_suffix: tfstate-default-<suffix>, "
                               "lock-tfstate-default-<suffix>.")
    legacy: bool = Field(default=False, description=(
        "The state was there before the operator named shared states unambiguously, under the old name, and "
        "is kept there (docs/operations.md, Upgrading)."))


class LockStatus(Model):
    """The Terraform state lock, when held."""

    id: str | None = Field(default=None, description="Lock id reported by Terraform.")
    operation: str | None = Field(default=None, description="What holds it, e.g. OperationTypeApply.")
    who: str | None = Field(default=None, description="Terraform's lock info `Who` (user@host; the pod's hostname).")
    holder_job: str | None = Field(default=None, description="Runner Job holding the lock.")
    holder_pod: str | None = Field(default=None, description="Pod holding the lock.")
    since: str | None = Field(default=None, description="When the lock was taken (RFC 3339).")
    holder_state: str | None = Field(
        default=None, description="Running, Exited (its pod remains) or Gone (no pod: the lock is stale)."
    )
    stale: bool = Field(
        default=False,
        description=(
            "The holder pod no longer exists; released automatically where the environment's "
            "autoReleaseStaleLocks allows it, otherwise with the deploy.devops.fractary.io/release-lock annotation."
        ),
    )
    stale_since: str | None = Field(default=None, description="When the lock was first found stale (RFC 3339).")
    release_refused: str | None = Field(
        default=None, description="Why the last release request was refused (e.g. its holder pod exists)."
    )


class LockRelease(Model):
    """An audited release of a state lock."""

    id: str = Field(description="The released lock's id.")
    holder_job: str | None = Field(default=None, description="Job that held it.")
    holder_pod: str | None = Field(default=None, description="Pod that held it (gone when released).")
    operation: str | None = Field(default=None, description="What held it, e.g. OperationTypeApply.")
    how: str = Field(description="auto (environment policy) or annotation.")
    requested_by: str | None = Field(default=None, description="Who asked (the requested-by annotation).")
    released_at: str = Field(description="When it was released (RFC 3339).")


class WindowStatus(Model):
    """The environment's change windows as they apply to this deployment's next step."""

    open: bool = Field(description="The step may run now.")
    operation: str = Field(description="apply or plan.")
    reason: str = Field(description="Which window decides, e.g. 'deny window 0 (0 9 * * 1-5 UTC) is open until ...'.")
    next_open: str | None = Field(default=None, description="When closed: when the next window opens (RFC 3339).")
    closes_at: str | None = Field(default=None, description="When open by an allow window: when it closes.")


class DependenciesStatus(Model):
    """spec.dependsOn as last checked."""

    ready: bool = Field(description="Every dependency is Ready.")
    waiting: list[str] = Field(
        max_length=20, default_factory=list, description="Dependencies not Ready, each with why."
    )
    outputs_digest: str | None = Field(
        default=None, description="Digest of the dependencies' applied plans and outputs; a change re-plans."
    )


class DeletionStatus(Model):
    """A deletion in progress (destroyOnDelete): what it waits for, or why it cannot complete."""

    state: str = Field(description="Destroying, AwaitingApproval, WaitingForJob, Retrying, Blocked or Done.")
    reason: str = Field(description="Machine-readable reason, e.g. DestroyFailed, ProjectNotFound.")
    message: str = Field(description="What it waits for or what blocks it, and the escape hatch.")
    plan_id: str | None = Field(default=None, description="The destroy plan.")
    attempts: int = Field(default=0, ge=0, description="Destroy attempts that failed.")
    next_attempt_at: str | None = Field(default=None, description="When the next attempt starts (RFC 3339).")
    # Kept in status (not only in the message of the moment): later looks at a blocked or retrying destroy say it.
    last_error: str | None = Field(default=None, description="The last failed attempt's error (redacted).")
    since: str | None = Field(default=None, description="When the deletion was asked for (RFC 3339).")


class HandledRequests(Model):
    """The annotation values already acted on (each new value asks once)."""

    replan: str | None = Field(
        default=None, description="Last handled deploy.devops.fractary.io/replan-requested-at."
    )
    drift_check: str | None = Field(
        default=None, description="Last handled deploy.devops.fractary.io/drift-check-requested-at."
    )
    release_lock: str | None = Field(
        default=None, description="Last handled deploy.devops.fractary.io/release-lock."
    )


class RetryStatus(Model):
    """A step that failed for a transient reason and is retried (spec.retry)."""

    step: JobStep = Field(description="The step retried.")
    attempt: int = Field(ge=1, description="The retry about to run (1 first).")
    request: str | None = Field(default=None, description="The plan request retried (a new spec retries nothing).")
    next_attempt_at: str = Field(description="When it starts (RFC 3339).")
    category: str | None = Field(default=None, description="Category of the failure (throttling, network, ...).")


class RegistryConflict(Model):
    """A resource also claimed by another deployment."""

    resource_id: str = Field(description="ARN or id of the contested resource.")
    address: str | None = Field(default=None, description="Its address in this deployment.")
    deployment: str = Field(description="The other InfraDeployment, as namespace/name.")


class RegistryStatus(Model):
    """This deployment's entries in the project's resource registry."""

    config_map_name: str = Field(description="Registry ConfigMap (registry.json and DEPLOYED.md).")
    resource_count: int = Field(default=0, ge=0, description="Resources this deployment registered.")
    conflicts: list[RegistryConflict] = Field(
        max_length=50,
        default_factory=list, description="Resources claimed by another deployment as well."
    )
    conflicts_truncated: bool = Field(
        default=False, description="More conflicts were found than conflicts holds."
    )
    resources_truncated: bool = Field(
        default=False, description=(
            "The deployment manages more resources than one deployment may record in the shared registry: "
            "only the first ones (by address) are listed there, with a truncation marker."
        ),
    )
    resources_from: Literal["state", "reported"] | None = Field(
        default=None, description=(
            "Where the registered resources come from: `state` (the backend's state, read by the operator) or "
            "`reported` (the runner's list, for a backend the operator does not read: S3)."
        ),
    )


class InfraDeploymentStatus(StatusBase):
    """Observed state of an InfraDeployment, written by the operator."""

    phase: InfraDeploymentPhase | None = Field(default=None, description="Lifecycle phase.")
    source_revision: str | None = Field(default=None, description="Source revision last fetched.")
    plan: PlanStatus | None = Field(default=None, description="The current plan.")
    approval: ApprovalStatus | None = Field(
        default=None,
        description="The approval gate of the current plan: pending since when, until when, or approved by whom.",
    )
    last_applied_plan_id: str | None = Field(default=None, description="Id of the last applied plan.")
    last_applied_revision: str | None = Field(default=None, description="Source revision of the last apply.")
    last_applied_at: str | None = Field(default=None, description="When the last apply finished (RFC 3339).")
    inputs_snapshot_secret: str | None = Field(
        default=None, description="Secret with the variables snapshotted at the last apply (used by destroy)."
    )
    jobs: JobsStatus = Field(default_factory=JobsStatus, description="Runner Jobs.")
    attempts: int = Field(default=0, ge=0, description="Consecutive failed attempts of the current step.")
    last_error: LastError | None = Field(default=None, description="The last failure.")
    tests: PreDeploymentSummary | None = Field(default=None, description="Last pre-deployment test summary.")
    verification: VerificationSummary | None = Field(default=None, description="Last verification summary.")
    drift: DriftStatus | None = Field(default=None, description="Last drift check.")
    outputs: OutputsStatus | None = Field(default=None, description="Published outputs (names only).")
    state: StateStatus | None = Field(default=None, description="Where the Kubernetes backend keeps the state.")
    lock: LockStatus | None = Field(default=None, description="The state lock, while held.")
    lock_releases: list[LockRelease] = Field(
        max_length=10, default_factory=list, description="Audited lock releases, newest last."
    )
    window: WindowStatus | None = Field(default=None, description="Change windows for the next step.")
    dependencies: DependenciesStatus | None = Field(default=None, description="spec.dependsOn as last checked.")
    deletion: DeletionStatus | None = Field(default=None, description="A deletion in progress.")
    handled: HandledRequests | None = Field(default=None, description="On-demand requests already acted on.")
    retry: RetryStatus | None = Field(default=None, description="A transient failure being retried.")
    suspended: bool = Field(default=False, description="spec.suspend is in effect: no Job starts.")
    registry: RegistryStatus | None = Field(default=None, description="Resource registry entries.")
    resource_count: int | None = Field(default=None, ge=0, description="Resources in the Terraform state.")
    replans: int = Field(
        default=0, ge=0, description="Plans re-made for the same spec (stale or expired plans); part of the request."
    )
    engine: str | None = Field(default=None, description="Engine of the last plan or apply.")
    interrupted_apply: str | None = Field(
        default=None,
        description=(
            "Plan id of an apply that was interrupted or went stale before it was recorded: the state may hold "
            "what it did, so the next plan is applied even when it has no changes (outputs and the registry are "
            "then written from the state)."
        ),
    )
    errored_state_secret: str | None = Field(
        default=None, description="Secret keeping an errored.tfstate Terraform could not save to the backend."
    )


KIND = KindInfo(
    kind="InfraDeployment",
    plural="infradeployments",
    singular="infradeployment",
    short_names=["idep"],
    description=(
        "One Terraform root module deployed to one environment: source, variables, approval, pre/post "
        "tests, drift detection, dependencies, destroy-on-delete and outputs."
    ),
    spec=InfraDeploymentSpec,
    status=InfraDeploymentStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Env", json_path=".spec.environment"),
        PrinterColumn(name="Plan", json_path=".status.plan.id"),
        PrinterColumn(name="Approval", json_path=".status.approval.state"),
        PrinterColumn(name="Add", json_path=".status.plan.add", type="integer", priority=1),
        PrinterColumn(name="Change", json_path=".status.plan.change", type="integer", priority=1),
        PrinterColumn(name="Destroy", json_path=".status.plan.destroy", type="integer", priority=1),
        PrinterColumn(name="Drifted", json_path=".status.drift.detected", type="boolean"),
        PrinterColumn(name="Suspended", json_path=".spec.suspend", type="boolean"),
        PrinterColumn(name="Next-Window", json_path=".status.window.nextOpen"),
        PrinterColumn(name="Lock", json_path=".status.lock.holderState", priority=1),
    ),
)
