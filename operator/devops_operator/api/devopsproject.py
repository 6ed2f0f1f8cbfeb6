"""DevOpsProject: one project's configuration, shared by every other kind that names it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from devops_operator.api.common import (
    AWS_REGION_PATTERN,
    CRON_PATTERN,
    DNS_LABEL_PATTERN,
    DURATION_PATTERN,
    OBJECT_NAME_PATTERN,
    EnvironmentName,
    KindInfo,
    LabelSelector,
    Model,
    Phase,
    PrinterColumn,
    StatusBase,
    standard_columns,
)
from devops_operator.endpoints import canonical_endpoint

DEFAULT_NAMING_PATTERN = "{project}-{subsystem}-{environment}-{resource}"
DEFAULT_REQUIRED_TAGS = ["project", "environment", "team", "cost-center"]
DEFAULT_RUNNER_IMAGE = "ghcr.io/fractary/devops-operator:0.1.0"
DEFAULT_RUNNER_SERVICE_ACCOUNT = "devops-operator-runner"
DEFAULT_PLAN_SERVICE_ACCOUNT = "devops-operator-runner-plan"


class CredentialsSource(StrEnum):
    AMBIENT = "ambient"
    IRSA = "irsa"
    SECRET = "secret"


class AwsSecretReference(Model):
    """A Secret holding static AWS keys (discouraged outside tests; prefer IRSA)."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret in the project's namespace.")
    access_key_id_key: str = Field(default="aws_access_key_id", description="Key of the access key id.")
    secret_access_key_key: str = Field(
        default="aws_secret_access_key", description="Key of the secret access key."
    )
    session_token_key: str | None = Field(default=None, description="Key of an optional session token.")


class AwsCredentials(Model):
    """How the operator gets AWS credentials for one identity."""

    source: CredentialsSource = Field(
        default=CredentialsSource.AMBIENT,
        description=(
            "ambient: the default boto3 chain (env, instance profile); irsa: the pod's web identity "
            "(IAM Roles for Service Accounts: the ServiceAccount's role), then roleArn when set; "
            "secret: static keys from secretRef, then roleArn when set."
        ),
    )
    role_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-zA-Z-]*:iam::[0-9]{12}:role/.+$",
        description=(
            "Role to assume (sts:AssumeRole) with the base credentials, e.g. one role per environment or "
            "account; it must trust the base identity (the operator's IRSA role or the Secret's user)."
        ),
    )
    external_id: str | None = Field(
        default=None, min_length=2, max_length=1224, description="ExternalId passed to sts:AssumeRole."
    )
    session_name: str = Field(
        default="devops-operator", min_length=2, max_length=64, description="RoleSessionName for sts:AssumeRole."
    )
    secret_ref: AwsSecretReference | None = Field(default=None, description="Static keys (source: secret).")


class NamingConvention(Model):
    pattern: str = Field(
        default=DEFAULT_NAMING_PATTERN,
        min_length=1,
        description=(
            "Resource-naming pattern. Placeholders: {project} {subsystem} {environment} {resource} "
            "{organization}. Rendered names are lower-case with '-' between words."
        ),
    )
    max_length: int = Field(default=63, ge=8, le=255, description="Longest name the pattern may render.")


class TerraformBackendType(StrEnum):
    KUBERNETES = "kubernetes"
    S3 = "s3"


class S3Backend(Model):
    bucket: str = Field(min_length=3, max_length=63, description="State bucket.")
    key_prefix: str = Field(default="devops-operator", description="Prefix of state keys inside the bucket.")
    region: str | None = Field(default=None, description="Bucket region; defaults to the project's region.")
    dynamodb_table: str | None = Field(
        default=None, description="DynamoDB lock table (omit to use S3 native locking, use_lockfile)."
    )
    encrypt: bool = Field(default=True, description="Server-side encryption of the state object.")


class KubernetesBackend(Model):
    secret_suffix_prefix: str = Field(
        default="tfstate", description="Prefix of the state Secret's suffix (the deployment name is appended)."
    )
    namespace: str | None = Field(
        default=None, description="Namespace of state Secrets and lock Leases; defaults to the deployment's."
    )


class TerraformBackend(Model):
    type: TerraformBackendType = Field(
        default=TerraformBackendType.KUBERNETES,
        description="kubernetes (Secret + Lease lock, the default) or s3 (with locking, for production).",
    )
    kubernetes: KubernetesBackend = Field(
        default_factory=KubernetesBackend, description="Settings of the Kubernetes backend (type: kubernetes)."
    )
    s3: S3Backend | None = Field(default=None, description="Settings of the S3 backend (required for type: s3).")


class ResourceRequirements(Model):
    cpu: str = Field(default="500m", description="CPU request and limit of runner Jobs.")
    memory: str = Field(default="512Mi", description="Memory request and limit of runner Jobs.")


class TerraformEngine(StrEnum):
    TERRAFORM = "terraform"
    TOFU = "tofu"


class TerraformSettings(Model):
    engine: TerraformEngine = Field(
        default=TerraformEngine.TERRAFORM,
        description="terraform or tofu: which of the runner image's pinned engines runs the plans.",
    )
    runner_image: str = Field(default=DEFAULT_RUNNER_IMAGE, description="Image of the Terraform runner Jobs.")
    version: str = Field(default="1.9.8", description="Terraform version the runner image pins (informational).")
    service_account_name: str = Field(
        default=DEFAULT_RUNNER_SERVICE_ACCOUNT,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description="ServiceAccount apply Jobs run as (an environment's runner.serviceAccountName overrides it).",
    )
    plan_service_account_name: str = Field(
        default=DEFAULT_PLAN_SERVICE_ACCOUNT,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "ServiceAccount plan, drift-check and destroy-plan Jobs run as: planning runs the module's code "
            "(providers, data sources, external programs) before any approval, so it gets a ServiceAccount of "
            "its own (an environment's runner.planServiceAccountName overrides it)."
        ),
    )
    backend: TerraformBackend = Field(default_factory=TerraformBackend, description="Where Terraform state lives.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="CPU and memory of runner Jobs."
    )
    active_deadline_seconds: int = Field(default=3600, ge=60, description="Deadline of one runner Job.")
    backoff_limit: int = Field(default=0, ge=0, le=10, description="Retries of a failed runner Job.")


class WindowKind(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class WindowOperation(StrEnum):
    APPLY = "apply"
    PLAN = "plan"


class ChangeWindow(Model):
    """When changes may run in an environment, as Argo CD's sync windows: a cron start and a duration."""

    kind: WindowKind = Field(
        default=WindowKind.ALLOW,
        description=(
            "allow: changes run only while an allow window is open (when any allow window is defined); "
            "deny: no change runs while a deny window is open, whatever the allow windows say."
        ),
    )
    schedule: str = Field(
        pattern=CRON_PATTERN,
        max_length=128,
        description="When the window opens: five cron fields (minute hour day-of-month month day-of-week).",
    )
    duration: str = Field(pattern=DURATION_PATTERN, description="How long it stays open once opened, e.g. 2h.")
    time_zone: str = Field(
        default="UTC", max_length=64, description="IANA time zone the schedule is read in, e.g. Europe/Berlin."
    )
    applies_to: list[WindowOperation] = Field(
        default_factory=lambda: [WindowOperation.APPLY],
        max_length=2,
        description="What the window limits: apply (the default), and plan too when listed.",
    )
    description: str | None = Field(default=None, max_length=256, description="Why the window exists.")


class EnvironmentRunner(Model):
    """What runs the Terraform of one environment, and as whom: set by the project owner, never by a deployment.

    The runner executes the tenant's module (providers, data sources and provisioners run at plan time), so
    its image, ServiceAccounts and credentials are decided here and bound into every plan id.
    """

    image: str | None = Field(
        default=None, min_length=1, max_length=512,
        description="Runner image of this environment's Jobs; unset: spec.terraform.runnerImage.",
    )
    service_account_name: str | None = Field(
        default=None, max_length=253, pattern=OBJECT_NAME_PATTERN,
        description="ServiceAccount of apply Jobs here; unset: spec.terraform.serviceAccountName.",
    )
    plan_service_account_name: str | None = Field(
        default=None, max_length=253, pattern=OBJECT_NAME_PATTERN,
        description=(
            "ServiceAccount of plan, drift-check and destroy-plan Jobs here; unset: "
            "spec.terraform.planServiceAccountName."
        ),
    )
    plan_credentials: AwsCredentials | None = Field(
        default=None,
        description=(
            "The read-only AWS identity plans, drift checks and destroy plans run with (they execute the "
            "module's code before any approval); only apply Jobs get the deploy credentials. Required for "
            "plans in a production environment; elsewhere unset falls back to the deploy credentials, which "
            "the project's PlanIdentity condition reports."
        ),
    )
    allowed_secrets: list[str] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "Secrets (names or globs) of the deployment's namespace that an InfraDeployment's "
            "spec.runner.env secretKeyRef may name in this environment; empty: none."
        ),
    )


class EnvironmentPolicy(Model):
    name: EnvironmentName = Field(description="Environment name, e.g. test, staging, prod.")
    production: bool = Field(
        default=False,
        description="A production environment never auto-applies, restarts or scales without approval.",
    )
    auto_approve: bool = Field(
        default=False, description="Apply plans without a manual approval (refused when production)."
    )
    cost_threshold: float | None = Field(
        default=None, ge=0, description="Monthly USD estimate above which a plan fails the cost gate."
    )
    auto_grant_permissions: bool = Field(
        default=False,
        description="Grant least-privilege IAM fixes for AccessDenied without approval (never in production).",
    )
    region: str | None = Field(
        default=None, pattern=AWS_REGION_PATTERN, description="AWS region; defaults to spec.aws.region."
    )
    account_id: str | None = Field(default=None, pattern=r"^[0-9]{12}$", description="Expected AWS account id.")
    credentials: AwsCredentials = Field(
        default_factory=AwsCredentials, description="Identity used to deploy and operate this environment."
    )
    deploy_role_name: str | None = Field(
        default=None, description="IAM role that Terraform runs as here (target of permission grants)."
    )
    discovery_credentials: AwsCredentials | None = Field(
        default=None,
        description="Separate IAM-management identity used to grant permissions; defaults to none (no grants).",
    )
    runner: EnvironmentRunner = Field(
        default_factory=EnvironmentRunner,
        description="Runner image, ServiceAccounts, plan identity and Secrets runner env may name (owner-only).",
    )
    variables: dict[str, str] = Field(
        default_factory=dict, description="Terraform variables every deployment in this environment receives."
    )
    change_windows: list[ChangeWindow] = Field(
        default_factory=list,
        max_length=20,
        description=(
            "When applies (and optionally plans) may run here; none: any time. An approved plan outside a "
            "window waits, and status says when the next window opens."
        ),
    )
    require_distinct_approver: bool = Field(
        default=False,
        description=(
            "The two-person rule: a plan (of an InfraDeployment) or an impact assessment (of a Remediation) "
            "is approved only by someone other than whoever last changed that object's spec (the "
            "devops.fractary.io/spec-changed-by annotation, kept true by the admission policy "
            "devops-operator-spec-changed-by); an approval by that user, or with no author recorded, approves "
            "nothing. Also on in namespaces labelled devops.fractary.io/require-distinct-approver=true."
        ),
    )
    auto_release_stale_locks: bool = Field(
        default=False,
        description=(
            "Release a Terraform state lock whose holder pod no longer exists without asking (recorded in the "
            "deployment's status.lockReleases and an Event); otherwise such a lock is reported as stale and "
            "released only with the devops.fractary.io/release-lock annotation. Never while the pod exists."
        ),
    )


class AwsSettings(Model):
    region: str = Field(default="us-east-1", pattern=AWS_REGION_PATTERN, description="Default region.")
    endpoint_url: Annotated[str | None, AfterValidator(canonical_endpoint)] = Field(
        default=None,
        max_length=2048,
        description=(
            "Override of every AWS endpoint (moto, LocalStack); empty for real AWS. http(s)://host[:port] with an "
            "optional path: no user, backslash, query or percent-escape (docs/security.md). Needs the tenancy "
            "policy's endpointOverrides and its host on endpointHosts."
        ),
    )


class DevOpsProjectSpec(Model):
    project: str | None = Field(
        default=None,
        max_length=40,
        pattern=DNS_LABEL_PATTERN,
        description="Project name used in resource names and tags; defaults to metadata.name.",
    )
    subsystem: str = Field(
        default="core", max_length=40, pattern=DNS_LABEL_PATTERN, description="Subsystem name."
    )
    organization: str | None = Field(
        default=None, max_length=40, pattern=DNS_LABEL_PATTERN, description="Organization name."
    )
    naming: NamingConvention = Field(
        default_factory=NamingConvention, description="How AWS resources of this project are named."
    )
    required_tags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED_TAGS),
        max_length=50,
        description="Tag keys every managed resource must carry.",
    )
    default_tags: dict[str, str] = Field(
        default_factory=dict, description="Tags added to every managed resource (project and environment are implied)."
    )
    aws: AwsSettings = Field(default_factory=AwsSettings, description="AWS region and endpoint defaults.")
    environments: list[EnvironmentPolicy] = Field(
        default_factory=list, max_length=50, description="The environments of the project and their policies."
    )
    terraform: TerraformSettings = Field(
        default_factory=TerraformSettings, description="Terraform runner image, state backend and Job limits."
    )
    allowed_namespaces: list[str] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Other namespaces whose objects may reference this project in projectRef (names or globs such as "
            "team-*). Objects in the project's own namespace always may; any other reference is refused with "
            "PolicyDenied unless its namespace is listed here or matches allowedNamespaceSelector."
        ),
    )
    allowed_namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Labels of other namespaces whose objects may reference this project (see allowedNamespaces).",
    )


class EnvironmentStatus(Model):
    name: str = Field(description="Environment name.")
    production: bool = Field(default=False, description="Whether the environment is marked production.")
    region: str = Field(description="AWS region the environment uses.")
    credentials_source: str = Field(description="Where its deploy credentials come from (ambient, irsa, secret).")
    identity: str | None = Field(default=None, description="ARN the deploy credentials resolved to (sts).")
    account_id: str | None = Field(default=None, description="AWS account of the deploy identity.")
    plan_identity: str | None = Field(
        default=None,
        description=(
            "What plans run as: planCredentials (and the ARN they resolved to), or deploy-fallback (no "
            "planCredentials: plans use the deploy identity), or missing (production: plans refused)."
        ),
    )
    example_resource_name: str = Field(description="What the naming pattern renders for a resource named 'api'.")


class DevOpsProjectStatus(StatusBase):
    phase: Phase | None = Field(
        default=None, description="Pending (being checked), Ready, or Stalled (the message says what to fix)."
    )
    environments: list[EnvironmentStatus] = Field(
        default_factory=list, max_length=50, description="Each environment as validated, with an example resource name."
    )
    environment_count: int | None = Field(default=None, description="Number of valid environments.")
    last_verified: str | None = Field(
        default=None, description="When every identity last answered STS (RFC 3339); re-checked periodically."
    )
    tenancy_rule: str | None = Field(
        default=None, description="The operator's tenancy policy rule that applies to this project's namespace."
    )


KIND = KindInfo(
    kind="DevOpsProject",
    plural="devopsprojects",
    singular="devopsproject",
    short_names=["dproj"],
    description=(
        "One project's configuration: naming pattern, required tags, AWS region and per-environment "
        "credentials and policies, Terraform runner and state backend."
    ),
    spec=DevOpsProjectSpec,
    status=DevOpsProjectStatus,
    printer_columns=standard_columns(
        PrinterColumn(name="Project", json_path=".spec.project"),
        PrinterColumn(name="Region", json_path=".spec.aws.region"),
        PrinterColumn(name="Environments", json_path=".status.environmentCount", type="integer"),
    ),
)
