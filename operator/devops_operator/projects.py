"""DevOpsProject validation: pure checks that say which field is wrong and how to fix it.

Every later kind resolves its project through `resolve_environment`, so the rules about
environments (production never auto-applies, credentials must be complete) live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

EXAMPLE_RESOURCE = "api"

# Reads a Secret's decoded data, or None when it does not exist.
SecretLookup = Callable[[str], Mapping[str, str] | None]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: the field (as written in YAML) and what to do about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


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


def field_path(loc: tuple[int | str, ...], root: str = "spec") -> str:
    """A pydantic error location as users write it: spec.environments[0].autoApprove."""
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def project_name(spec: DevOpsProjectSpec, metadata_name: str) -> str:
    return spec.project or metadata_name


def validate_project(
    metadata_name: str, spec: DevOpsProjectSpec, read_secret: SecretLookup
) -> ProjectReport:
    """All checks of one DevOpsProject: naming, environments, policies, credentials."""
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
        report.problems.extend(_credential_problems(f"{where}.credentials", env.credentials, read_secret))
        if env.discovery_credentials is not None:
            report.problems.extend(
                _credential_problems(f"{where}.discoveryCredentials", env.discovery_credentials, read_secret)
            )
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


def _credential_problems(where: str, creds: AwsCredentials, read_secret: SecretLookup) -> list[Problem]:
    if creds.source == CredentialsSource.IRSA and not creds.role_arn:
        return [Problem(f"{where}.roleArn", "source irsa needs the role to assume: set roleArn")]
    if creds.source != CredentialsSource.SECRET:
        return []
    if creds.secret_ref is None:
        return [Problem(f"{where}.secretRef", "source secret needs secretRef.name naming a Secret with AWS keys")]
    data = read_secret(creds.secret_ref.name)
    if data is None:
        return [
            Problem(
                f"{where}.secretRef.name",
                f"Secret {creds.secret_ref.name!r} does not exist in this namespace: create it with keys "
                f"{creds.secret_ref.access_key_id_key} and {creds.secret_ref.secret_access_key_key}",
            )
        ]
    wanted = [creds.secret_ref.access_key_id_key, creds.secret_ref.secret_access_key_key]
    if creds.secret_ref.session_token_key:
        wanted.append(creds.secret_ref.session_token_key)
    missing = [key for key in wanted if not data.get(key)]
    if missing:
        return [
            Problem(
                f"{where}.secretRef",
                f"Secret {creds.secret_ref.name!r} lacks key(s) {', '.join(missing)}: add them or point "
                "the *Key fields at the keys it has",
            )
        ]
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
        example_resource_name=example,
    )


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


def find_environment(spec: DevOpsProjectSpec, name: str) -> EnvironmentPolicy | None:
    return next((env for env in spec.environments if env.name == name), None)
