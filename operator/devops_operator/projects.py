"""DevOpsProject validation: pure checks that say which field is wrong and how to fix it.

Only what the spec itself tells: the credentials' Secrets and AWS's answer are checked by the
AWS session factory (`aws/session.py`, `aws/identity.py`), the one place that reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from devops_operator import naming
from devops_operator.api.devopsproject import (
    AwsCredentials,
    CredentialsSource,
    DevOpsProjectSpec,
    EnvironmentPolicy,
    EnvironmentStatus,
)
from devops_operator.deploy.windows import window_problems
from devops_operator.problems import Problem, field_path

EXAMPLE_RESOURCE = "api"


@dataclass
class ProjectReport:
    """What validating a DevOpsProject found: problems, or the environments it renders."""

    problems: list[Problem] = field(default_factory=list)
    environments: list[EnvironmentStatus] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.valid:
            names = ", ".join(env.name for env in self.environments)
            return f"{len(self.environments)} environment(s) ready: {names}"
        first = "; ".join(str(p) for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return first + more


def parse_spec(raw: Mapping[str, object]) -> tuple[DevOpsProjectSpec | None, list[Problem]]:
    """Parse a wire-format spec; pydantic errors become Problems naming the camelCase field."""
    try:
        return DevOpsProjectSpec.model_validate(dict(raw)), []
    except ValidationError as exc:
        problems = [Problem(field=field_path(err["loc"]), message=err["msg"]) for err in exc.errors()]
        return None, problems


def project_name(spec: DevOpsProjectSpec, metadata_name: str) -> str:
    return spec.project or metadata_name


def validate_project(metadata_name: str, spec: DevOpsProjectSpec) -> ProjectReport:
    """The spec-only checks of one DevOpsProject: naming, environments, policies, credential shapes."""
    report = ProjectReport()
    try:
        pattern = naming.parse_pattern(spec.naming.pattern)
    except naming.NamingError as exc:
        report.problems.append(Problem("spec.naming.pattern", str(exc)))
        pattern = None

    if not spec.environments:
        report.problems.append(
            Problem("spec.environments", "no environments are defined: add at least one, e.g. - name: test")
        )
    seen: set[str] = set()
    for index, env in enumerate(spec.environments):
        where = f"spec.environments[{index}]"
        if env.name in seen:
            report.problems.append(Problem(f"{where}.name", f"environment {env.name!r} is defined twice"))
        seen.add(env.name)
        report.problems.extend(_policy_problems(where, env))
        report.problems.extend(window_problems(env.change_windows, f"{where}.changeWindows"))
        report.problems.extend(_credential_problems(f"{where}.credentials", env.credentials))
        if env.discovery_credentials is not None:
            report.problems.extend(_credential_problems(f"{where}.discoveryCredentials", env.discovery_credentials))
        if env.runner.plan_credentials is not None:
            report.problems.extend(_credential_problems(f"{where}.runner.planCredentials",
                                                        env.runner.plan_credentials))
        if pattern is not None:
            status = _environment_status(metadata_name, spec, env, pattern)
            if isinstance(status, Problem):
                report.problems.append(status)
            else:
                report.environments.append(status)
    return report


def _policy_problems(where: str, env: EnvironmentPolicy) -> list[Problem]:
    problems = []
    if env.production and env.auto_approve:
        problems.append(
            Problem(
                f"{where}.autoApprove",
                f"environment {env.name!r} is production and production never auto-applies: "
                "set autoApprove: false (approve plans through spec.approval.planId)",
            )
        )
    if env.production and env.auto_grant_permissions:
        problems.append(
            Problem(
                f"{where}.autoGrantPermissions",
                f"environment {env.name!r} is production: IAM grants there need an approved "
                "PermissionRequest, set autoGrantPermissions: false",
            )
        )
    return problems


def _credential_problems(where: str, creds: AwsCredentials) -> list[Problem]:
    """What can be told from the spec alone; the Secret itself is read (once) by the AWS session factory."""
    if creds.source == CredentialsSource.SECRET and creds.secret_ref is None:
        return [Problem(f"{where}.secretRef", "source secret needs secretRef.name naming a Secret with AWS keys")]
    return []


def _environment_status(
    metadata_name: str, spec: DevOpsProjectSpec, env: EnvironmentPolicy, pattern: naming.NamingPattern
) -> EnvironmentStatus | Problem:
    values = naming_values(spec, metadata_name, env.name, EXAMPLE_RESOURCE)
    try:
        example = pattern.render(values, max_length=spec.naming.max_length)
    except naming.NamingError as exc:
        return Problem("spec.naming.pattern", f"environment {env.name!r}: {exc}")
    return EnvironmentStatus(
        name=env.name,
        production=env.production,
        region=env.region or spec.aws.region,
        credentials_source=str(env.credentials.source),
        plan_identity=plan_identity(env),
        example_resource_name=example,
    )


PLAN_CREDENTIALS = "planCredentials"
DEPLOY_FALLBACK = "deploy-fallback"
PLAN_IDENTITY_MISSING = "missing"


def plan_identity(env: EnvironmentPolicy) -> str:
    """What plans of an environment run as: its planCredentials; or, without them, the deploy identity
    (deploy-fallback) outside production, and nothing in production (missing: plans are refused, since they
    would run the tenant's module code with the deploy identity before any approval)."""
    if env.runner.plan_credentials is not None:
        return PLAN_CREDENTIALS
    return PLAN_IDENTITY_MISSING if env.production else DEPLOY_FALLBACK


def plan_identity_condition(environments: list[EnvironmentStatus]) -> tuple[str, str, str, str]:
    """The project's PlanIdentity condition: whether every environment's plans have an identity of their own."""
    missing = [e.name for e in environments if e.plan_identity == PLAN_IDENTITY_MISSING]
    fallback = [e.name for e in environments if e.plan_identity == DEPLOY_FALLBACK]
    if missing:
        more = f"; {', '.join(fallback)} plan(s) with the deploy identity" if fallback else ""
        return ("PlanIdentity", "False", "PlanIdentityMissing",
                f"production environment(s) {', '.join(missing)} have no runner.planCredentials: their "
                "InfraDeployments do not plan (a plan runs the module's code, providers and external programs, "
                f"before any approval, and must not hold the deploy identity){more}; set "
                "spec.environments[].runner.planCredentials to a read-only identity")
    if fallback:
        return ("PlanIdentity", "False", "DeployIdentityFallback",
                f"environment(s) {', '.join(fallback)} have no runner.planCredentials: their plans run the "
                "module's code with the deploy identity and ServiceAccount; set "
                "spec.environments[].runner.planCredentials to a read-only identity")
    return ("PlanIdentity", "True", "Separate", "every environment's plans run with its runner.planCredentials")


def naming_values(
    spec: DevOpsProjectSpec, metadata_name: str, environment: str, resource: str
) -> dict[str, str | None]:
    """The placeholder values for one resource of one environment of this project."""
    return {
        "project": project_name(spec, metadata_name),
        "subsystem": spec.subsystem,
        "organization": spec.organization,
        "environment": environment,
        "resource": resource,
    }


def resource_name(spec: DevOpsProjectSpec, metadata_name: str, environment: str, resource: str) -> str:
    """The name the project's pattern gives `resource` in `environment` (raises NamingError)."""
    pattern = naming.parse_pattern(spec.naming.pattern)
    return pattern.render(
        naming_values(spec, metadata_name, environment, resource), max_length=spec.naming.max_length
    )
