"""Verify that each environment's credentials work: one sts:GetCallerIdentity per identity.

A DevOpsProject is only Ready when the operator can act as the identities it names, so a
wrong key, a role that cannot be assumed or an account mismatch shows up on the project,
with a category and a fix, before any deployment trips over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from devops_operator.api.devopsproject import EnvironmentPolicy
from devops_operator.aws.errors import AwsConfigurationError, AwsFailure, CredentialsError, classify
from devops_operator.aws.session import AwsSessionFactory, CallerIdentity, Identity, credentials_field

# What a failed identity check can raise; anything else is a bug and is not dressed up as AWS's answer.
CHECK_ERRORS = (BotoCoreError, ClientError, AwsConfigurationError)
MAX_PARALLEL_CHECKS = 8


@dataclass(frozen=True)
class IdentityCheck:
    environment: str
    index: int
    identity: Identity
    caller: CallerIdentity | None = None
    failure: AwsFailure | None = None

    @property
    def field(self) -> str:
        return credentials_field(self.environment, self.identity, self.index)

    @property
    def transient(self) -> bool:
        """Worth retrying with nothing changed: unreachable, throttled, a 5xx (botocore's own judgement)."""
        return self.failure is not None and self.failure.retryable

    @property
    def missing_credentials(self) -> bool:
        """The credentials could not even be assembled (a Secret or key missing or unreadable)."""
        return self.failure is not None and self.failure.code == CredentialsError.__name__

    def describe(self) -> str:
        if self.failure is None:
            return f"{self.field}: {self.caller.arn if self.caller else 'verified'}"
        if self.failure.fix == self.failure.message:  # our own configuration errors name field and fix already
            return self.failure.message
        return f"{self.field} ({self.environment}): {self.failure.summary}; fix: {self.failure.fix}"


def verify_identities(
    factory: AwsSessionFactory, project_key: str, environments: Sequence[EnvironmentPolicy]
) -> list[IdentityCheck]:
    """Check the deploy identity of every environment, and the discovery and plan identities where set.

    In parallel: with AWS unreachable each check spends its whole retry budget, and they must not
    add up while holding one of kopf's workers.
    """
    wanted: list[tuple[int, EnvironmentPolicy, Identity]] = []
    for index, env in enumerate(environments):
        wanted.append((index, env, "deploy"))
        if env.discovery_credentials is not None:
            wanted.append((index, env, "discovery"))
        if env.runner.plan_credentials is not None:
            wanted.append((index, env, "plan"))
    if not wanted:
        return []

    def check(item: tuple[int, EnvironmentPolicy, Identity]) -> IdentityCheck:
        index, env, identity = item
        try:
            caller = factory.caller_identity(project_key, env.name, identity)
        except CHECK_ERRORS as exc:
            return IdentityCheck(env.name, index, identity, failure=classify(exc))
        return IdentityCheck(env.name, index, identity, caller=caller)

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHECKS, len(wanted))) as pool:
        return list(pool.map(check, wanted))  # map keeps the spec's order
