"""The sandbox's tenancy policy: its namespace may use anything, as the platform team's own would.

Printed at start-up, so a user of the sandbox sees that the policy exists and what it allows; the
emulated AWS (moto) is the only endpoint a project there may name itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from devops_operator.api.devopsproject import CredentialsSource
from devops_operator.tenancy import TenancyPolicy, TenancyRule


def sandbox_policy(namespace: str, aws_url: str) -> TenancyPolicy:
    """`namespace` (a name or a glob) may use any credentials and the emulated AWS."""
    moto = urlsplit(aws_url).netloc
    return TenancyPolicy(
        operator_namespace=namespace,
        endpoint_hosts=[moto],
        rules=[
            TenancyRule(
                name="sandbox",
                namespaces=[namespace],
                credential_sources=list(CredentialsSource),
                role_arns=["*"],
                endpoint_overrides=True,
            )
        ],
    )


def describe(policy: TenancyPolicy) -> str:
    rule = policy.rules[0]
    sources = ", ".join(str(source) for source in rule.credential_sources)
    return (f"tenancy policy: namespace {', '.join(rule.namespaces)} may use {sources} credentials and "
            f"endpoint {', '.join(policy.endpoint_hosts)}; other namespaces only their own keys (docs/security.md)")
