"""Who decides what a runner Job runs and as whom (pure): the project owner, never the deployment.

The runner executes the tenant's module: `terraform init/plan` runs providers, data sources and `external`
programs before any approval. So the image, the ServiceAccounts and the AWS identities of runner Jobs come
from the DevOpsProject (its owner's `spec.environments[].runner` and `spec.terraform`), plans get the
environment's read-only `planCredentials`, applies alone get the deploy credentials, and a deployment's
`spec.runner` may add only what cannot change that: resources, a deadline and environment variables whose
names the runner does not set (and which come after nothing of the operator's: the operator's entries are
last, so even a name let through could not shadow them).

Everything here decides over plain models; `deploy/inputs.py` turns a refusal into a Stalled deployment.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from devops_operator.api.devopsproject import (
    AwsCredentials,
    CredentialsSource,
    DevOpsProjectSpec,
    EnvironmentPolicy,
)
from devops_operator.api.infradeployment import EnvVar, RunnerOverrides

# Names the runner, the operator or the platform set, or that change how the runner itself or the engine
# starts (which Python code runs, which libraries load, which workspace and state): a tenant may not set them.
RESERVED_PREFIXES = ("AWS_", "DEVOPS_", "KUBERNETES_", "KUBE_", "PYTHON", "LD_", "TF_CLI_ARGS")
RESERVED_NAMES = frozenset({"HOME", "PATH", "HOSTNAME", "KUBECONFIG", "TF_IN_AUTOMATION", "TF_INPUT",
                            "TF_DATA_DIR", "TF_WORKSPACE", "TF_CLI_CONFIG_FILE"})
# Steps that run the module before (or without) an approval: they get the plan identity.
PLAN_STEPS = frozenset({"plan", "drift", "destroy"})


@dataclass(frozen=True)
class Refusal:
    """Why a deployment's runner settings cannot be used: reason, field and a message with the fix."""

    reason: str
    field: str
    message: str


@dataclass(frozen=True)
class StepIdentity:
    """What one kind of runner Job runs as: its ServiceAccount and AWS credentials, and where they come from."""

    service_account: str
    credentials: AwsCredentials
    origin: str  # "credentials", "runner.planCredentials" or "credentials (fallback: no planCredentials)"


@dataclass(frozen=True)
class RunnerChoice:
    """The owner's choice for one environment: the image, and the identities of apply and plan Jobs."""

    image: str
    apply: StepIdentity
    plan: StepIdentity

    def for_step(self, step: str) -> StepIdentity:
        return self.plan if step in PLAN_STEPS else self.apply


def reserved(name: str) -> bool:
    upper = name.upper()
    return upper in RESERVED_NAMES or upper.startswith(RESERVED_PREFIXES)


def environment_index(project: DevOpsProjectSpec, environment: str) -> int:
    return next((i for i, env in enumerate(project.environments) if env.name == environment), 0)


def credential_secrets(project: DevOpsProjectSpec) -> set[str]:
    """Every Secret the project names for AWS keys (any environment, any identity)."""
    names = set()
    for env in project.environments:
        for creds in (env.credentials, env.discovery_credentials, env.runner.plan_credentials):
            if creds is not None and creds.source == CredentialsSource.SECRET and creds.secret_ref is not None:
                names.add(creds.secret_ref.name)
    return names


def override_refusals(runner: RunnerOverrides, project_key: str, env_field: str) -> list[Refusal]:
    """spec.runner.image and serviceAccountName: the project owner's to set, refused on a deployment."""
    refused = []
    if runner.image is not None:
        refused.append(Refusal(
            "RunnerOverrideRefused", "spec.runner.image",
            f"a deployment may not choose its runner image ({runner.image}): the project owner sets it in "
            f"DevOpsProject {project_key} {env_field}.runner.image (or spec.terraform.runnerImage); remove "
            "spec.runner.image"))
    if runner.service_account_name is not None:
        refused.append(Refusal(
            "RunnerOverrideRefused", "spec.runner.serviceAccountName",
            f"a deployment may not choose its runner ServiceAccount ({runner.service_account_name}): the project "
            f"owner sets it in DevOpsProject {project_key} {env_field}.runner.serviceAccountName and "
            ".planServiceAccountName (or spec.terraform); remove spec.runner.serviceAccountName"))
    return refused


def env_refusals(entries: Sequence[EnvVar], env: EnvironmentPolicy, project_key: str, env_field: str,
                 forbidden_secrets: set[str]) -> list[Refusal]:
    """Runner env entries a deployment may not set: reserved names, and Secrets the environment does not allow."""
    refused = []
    allowed = env.runner.allowed_secrets
    for index, entry in enumerate(entries):
        where = f"spec.runner.env[{index}]"
        if reserved(entry.name):
            refused.append(Refusal(
                "ReservedRunnerEnv", f"{where}.name",
                f"{entry.name} is a name the runner sets (AWS_*, DEVOPS_*, KUBERNETES_*, KUBE_*, PYTHON*, LD_*, "
                "TF_CLI_ARGS*, TF_IN_AUTOMATION, TF_INPUT, TF_DATA_DIR, TF_WORKSPACE, TF_CLI_CONFIG_FILE, "
                "KUBECONFIG, HOME, PATH, HOSTNAME): credentials, region and endpoint come from the DevOpsProject; "
                "remove the entry or rename it"))
            continue
        ref = entry.secret_key_ref
        if ref is None:
            continue
        if ref.name in forbidden_secrets:
            refused.append(Refusal(
                "RunnerSecretNotAllowed", f"{where}.secretKeyRef.name",
                f"Secret {ref.name} holds AWS keys of DevOpsProject {project_key}: runner env may never read "
                "them (the operator passes each Job only the identity of its step); remove the entry"))
        elif not any(fnmatch.fnmatchcase(ref.name, glob) for glob in allowed):
            refused.append(Refusal(
                "RunnerSecretNotAllowed", f"{where}.secretKeyRef.name",
                f"Secret {ref.name} is not one the environment {env.name!r} lets runner env read "
                f"(DevOpsProject {project_key} {env_field}.runner.allowedSecrets: "
                f"{', '.join(allowed) or 'none'}): ask the project owner to list it, or remove the entry"))
    return refused


def runner_choice(project: DevOpsProjectSpec, env: EnvironmentPolicy, project_key: str,
                  env_field: str) -> RunnerChoice | Refusal:
    """The image and the step identities of one environment, or why its plans may not run at all."""
    terraform, runner = project.terraform, env.runner
    apply = StepIdentity(runner.service_account_name or terraform.service_account_name, env.credentials,
                         "credentials")
    if runner.plan_credentials is not None:
        plan = StepIdentity(runner.plan_service_account_name or terraform.plan_service_account_name,
                            runner.plan_credentials, "runner.planCredentials")
    elif env.production:
        return Refusal(
            "PlanIdentityMissing", "spec.environment",
            f"environment {env.name!r} of DevOpsProject {project_key} is production and has no "
            f"{env_field}.runner.planCredentials: a plan runs the module's code (providers, data sources, external "
            "programs) before any approval and must not hold the deploy identity; the project owner sets a "
            "read-only identity there")
    else:
        # Outside production plans may keep the deploy identity and its ServiceAccount (an IRSA role is bound
        # to it); the project's PlanIdentity condition and status.environments[].planIdentity say so.
        plan = StepIdentity(apply.service_account, env.credentials, "credentials (fallback: no planCredentials)")
    return RunnerChoice(runner.image or terraform.runner_image, apply, plan)
