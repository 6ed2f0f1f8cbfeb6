"""Verify that each environment's credentials work: one sts:GetCallerIdentity per identity.

A DevOpsProject is only Ready when the operator can act as the identities it names, so a
wrong key, a role that cannot be assumed or an account mismatch shows up on the project,
with a category and a fix, before any deployment trips over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from devops_operator.api.devopsproject import EnvironmentPolicy
from devops_operator.aws.errors import AwsFailure, FailureCategory, classify
from devops_operator.aws.session import AwsSessionFactory, CallerIdentity, Identity

# Failures worth retrying without anyone changing anything.
TRANSIENT = frozenset({FailureCategory.NETWORK, FailureCategory.THROTTLING})


@dataclass(frozen=True)
class IdentityCheck:
    environment: str
    index: int
    identity: Identity
    caller: CallerIdentity | None = None
    failure: AwsFailure | None = None

    @property
    def field(self) -> str:
        name = "credentials" if self.identity == "deploy" else "discoveryCredentials"
        return f"spec.environments[{self.index}].{name}"

    @property
    def transient(self) -> bool:
        return self.failure is not None and self.failure.category in TRANSIENT

    def describe(self) -> str:
        if self.failure is None:
            return f"{self.field}: {self.caller.arn if self.caller else 'verified'}"
        return f"{self.field} ({self.environment}): {self.failure.summary}; fix: {self.failure.fix}"


def verify_identities(
    factory: AwsSessionFactory, project_key: str, environments: Sequence[EnvironmentPolicy]
) -> list[IdentityCheck]:
    """Check the deploy identity of every environment and the discovery identity where one is set."""
    checks: list[IdentityCheck] = []
    for index, env in enumerate(environments):
        identities: list[Identity] = ["deploy"]
        if env.discovery_credentials is not None:
            identities.append("discovery")
        for identity in identities:
            try:
                caller = factory.caller_identity(project_key, env.name, identity)
            except Exception as exc:  # every failure is classified and reported, none is fatal here
                checks.append(IdentityCheck(env.name, index, identity, failure=classify(exc)))
            else:
                checks.append(IdentityCheck(env.name, index, identity, caller=caller))
    return checks
