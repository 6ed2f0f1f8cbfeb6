"""The tenancy policy: which namespaces may make the operator use which AWS identities and endpoints.

The operator holds AWS credentials for many teams, so who may act as what is decided here, by the
operator's own configuration (a file the platform team owns, mounted from the chart's values), never
by a tenant's spec (DESIGN §6). A DevOpsProject that asks for more than its namespace's rule allows
is Stalled with `PolicyDenied`, and no AWS call is made with it.

The file (`DEVOPS_OPERATOR_TENANCY_POLICY`, YAML; docs/security.md documents it):

    apiVersion: devops.fractary.io/v1alpha1
    kind: TenancyPolicy
    operatorNamespace: devops-operator
    endpointHosts: ["localstack.localstack.svc:4566"]
    rules:
      - name: payments
        namespaces: ["payments", "payments-*"]
        namespaceSelector: {matchLabels: {tenant: payments}}
        credentialSources: [secret, irsa]
        roleArns: ["arn:aws:iam::111122223333:role/payments-*"]
        accountIds: ["111122223333"]
        endpointOverrides: false
        gitHosts: ["github.com", "gitlab.example.com:443"]
        sourceNamespaces: ["flux-system"]

The first rule whose `namespaces` globs and `namespaceSelector` both match a namespace applies. With no
matching rule the built-in defaults apply: in the operator's own namespace every credential source and
role; anywhere else only `secret` (the namespace's own keys), never the operator's identity.

Everything here is pure: the namespace's labels are passed in.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from devops_operator.api.common import LabelSelector, Model
from devops_operator.api.devopsproject import AwsCredentials, CredentialsSource, DevOpsProjectSpec
from devops_operator.endpoints import Endpoint, EndpointError, parse_endpoint
from devops_operator.problems import Problem, field_path

POLICY_KIND = "TenancyPolicy"
DEFAULT_OPERATOR_NAMESPACE = "devops-operator"
OPERATOR_NAMESPACE_RULE = "operator-namespace"
DEFAULT_RULE = "default"
# `irsa` without a roleArn is the operator pod's own web identity: the policy treats it as ambient.
OPERATOR_IDENTITY = "ambient"
ROLE_ARN_ACCOUNT = 4  # arn:aws:iam::<account>:role/... split on ':'


class TenancyRule(Model):
    """What the namespaces a rule matches may ask of the operator."""

    name: str = Field(min_length=1, max_length=63, description="Name of the rule (quoted in PolicyDenied messages).")
    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespace names or globs (team-*) the rule applies to; empty: any name.",
    )
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Labels the Namespace object must carry for the rule to apply."
    )
    credential_sources: list[CredentialsSource] = Field(
        default_factory=lambda: [CredentialsSource.SECRET],
        description=(
            "Credential sources allowed. `ambient`, and `irsa` without a roleArn, act as the operator's own "
            "AWS identity; `secret` uses keys the namespace brings itself."
        ),
    )
    role_arns: list[str] | None = Field(
        default=None,
        description=(
            "Globs a credentials roleArn must match. Unset: a roleArn may only be assumed with the namespace's "
            "own keys (source secret), never with the operator's identity."
        ),
    )
    account_ids: list[str] | None = Field(
        default=None,
        description=(
            "AWS accounts the namespace may use. Set: every environment must declare an accountId from the list "
            "(the operator then checks each session's account) and every roleArn must be in one of them."
        ),
    )
    endpoint_overrides: bool = Field(
        default=False,
        description=(
            "Whether a project may set spec.aws.endpointUrl; its host must also be in the policy's "
            "endpointHosts. Off by default: endpoints come from the operator's configuration."
        ),
    )

    git_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Git hosts (host or host:port, globs allowed; `file://` for local paths) the operator itself may ask "
            "for a branch's head (git ls-remote) for these namespaces. Other hosts are never called by the "
            "operator: the runner Job resolves the branch when it plans."
        ),
    )
    source_namespaces: list[str] = Field(
        default_factory=list,
        description=(
            "Namespaces (names or globs) whose Flux sources an InfraDeployment here may name in "
            "spec.source.sourceRef.namespace. Empty: only the deployment's own namespace (Flux's "
            "--no-cross-namespace-refs)."
        ),
    )

    def applies_to(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.namespaces and not any(fnmatch.fnmatchcase(namespace, glob) for glob in self.namespaces):
            return False
        return self.namespace_selector is None or self.namespace_selector.matches(labels)


class TenancyPolicy(Model):
    """The operator's tenancy policy (the file format of DEVOPS_OPERATOR_TENANCY_POLICY)."""

    api_version: str | None = Field(default=None, description="devops.fractary.io/v1alpha1 (optional).")
    kind: str | None = Field(default=None, description="TenancyPolicy (optional).")
    operator_namespace: str = Field(
        default=DEFAULT_OPERATOR_NAMESPACE, description="The operator's own namespace (the platform team's)."
    )
    endpoint_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (host or host:port, globs allowed) a project's spec.aws.endpointUrl may name.",
    )
    rules: list[TenancyRule] = Field(default_factory=list, description="Rules, first match wins.")

    @property
    def uses_labels(self) -> bool:
        """Whether deciding needs the Namespace's labels (so callers read it only when it matters)."""
        return any(rule.namespace_selector is not None for rule in self.rules)

    def rule_for(self, namespace: str, labels: Mapping[str, str] | None = None) -> TenancyRule:
        for rule in self.rules:
            if rule.applies_to(namespace, labels or {}):
                return rule
        if namespace == self.operator_namespace:
            return TenancyRule(
                name=OPERATOR_NAMESPACE_RULE, credential_sources=list(CredentialsSource), role_arns=["*"],
                git_hosts=["*"], source_namespaces=["*"],
            )
        return TenancyRule(name=DEFAULT_RULE)

    def endpoint_host_allowed(self, endpoint: Endpoint | str) -> bool:
        """Whether the endpoint's normalised host (or host:port) is on endpointHosts; an unusable URL never is."""
        if isinstance(endpoint, str):
            try:
                endpoint = parse_endpoint(endpoint)
            except EndpointError:
                return False
        return any(_host_match(endpoint.host_port, glob) or _host_match(endpoint.netloc_host, glob)
                   for glob in self.endpoint_hosts)


def _host_match(text: str, glob: str) -> bool:
    """A host glob: `*` and `?` only (brackets are an IPv6 address's, not a character class)."""
    return fnmatch.fnmatchcase(text, glob.lower().replace("[", "[[]"))


class TenancyPolicyError(ValueError):
    """The policy file cannot be read or does not parse; the operator refuses to start with it."""


def parse_policy(text: str, source: str = "tenancy policy") -> TenancyPolicy:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise TenancyPolicyError(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TenancyPolicyError(f"{source} must be a mapping (apiVersion, kind: {POLICY_KIND}, rules)")
    try:
        policy = TenancyPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TenancyPolicyError(f"{source}: {where}: {first['msg']}") from None
    if policy.kind not in (None, POLICY_KIND):
        raise TenancyPolicyError(f"{source}: kind must be {POLICY_KIND}, not {policy.kind!r}")
    return policy


class PolicySource:
    """The policy in force: a fixed one, or a file re-read when it changes (a ConfigMap mount updates it)."""

    def __init__(self, policy: TenancyPolicy | None = None, path: str | None = None) -> None:
        self._policy = policy or TenancyPolicy()
        self._path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        if self._path is not None:
            self._reload()

    def _reload(self) -> None:
        assert self._path is not None
        try:
            stat = self._path.stat()
            text = self._path.read_text()
        except OSError as exc:
            raise TenancyPolicyError(f"tenancy policy {self._path} cannot be read: {exc.strerror}") from None
        self._policy = parse_policy(text, str(self._path))
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def current(self) -> TenancyPolicy:
        if self._path is None:
            return self._policy
        with self._lock:
            try:
                stat = self._path.stat()
                if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                    self._reload()
            except (OSError, TenancyPolicyError):
                # A half-written or removed file keeps the last good policy in force.
                return self._policy
            return self._policy


# --- decisions ---------------------------------------------------------------------------------------


def _denied(where: str, rule: TenancyRule, namespace: str, message: str) -> Problem:
    return Problem(where, f"{message} (tenancy policy rule {rule.name!r} for namespace {namespace!r})")


def effective_source(creds: AwsCredentials) -> str:
    """The source as the policy sees it: irsa without a roleArn is the operator's own identity."""
    source = str(creds.source)
    if source == CredentialsSource.IRSA and not creds.role_arn:
        return OPERATOR_IDENTITY
    return source


def _role_account(role_arn: str) -> str | None:
    parts = role_arn.split(":")
    return parts[ROLE_ARN_ACCOUNT] if len(parts) > ROLE_ARN_ACCOUNT else None


def _credential_problems(
    where: str, creds: AwsCredentials, rule: TenancyRule, namespace: str
) -> list[Problem]:
    problems: list[Problem] = []
    source = effective_source(creds)
    allowed = [str(s) for s in rule.credential_sources]
    if source not in allowed:
        what = "the operator's own AWS identity" if source == OPERATOR_IDENTITY else f"source {source}"
        if str(creds.source) == CredentialsSource.IRSA:
            what = "irsa without a roleArn (the operator's own AWS identity)"
        problems.append(_denied(
            f"{where}.source", rule, namespace,
            f"{what} is not allowed here (allowed: {', '.join(allowed) or 'none'}): use source: secret with "
            "this namespace's own keys, or ask the platform team to extend the rule",
        ))
    if creds.role_arn:
        if rule.role_arns is not None:
            if not any(fnmatch.fnmatchcase(creds.role_arn, glob) for glob in rule.role_arns):
                problems.append(_denied(
                    f"{where}.roleArn", rule, namespace,
                    f"role {creds.role_arn} is not one this namespace may assume "
                    f"(allowed: {', '.join(rule.role_arns) or 'none'})",
                ))
        elif str(creds.source) != CredentialsSource.SECRET:
            problems.append(_denied(
                f"{where}.roleArn", rule, namespace,
                f"assuming {creds.role_arn} with the operator's own identity needs the role in the rule's "
                "roleArns; with source: secret the namespace's own keys assume it",
            ))
        account = _role_account(creds.role_arn)
        if rule.account_ids is not None and account not in rule.account_ids:
            problems.append(_denied(
                f"{where}.roleArn", rule, namespace,
                f"role {creds.role_arn} is in account {account}, not one this namespace may use "
                f"({', '.join(rule.account_ids) or 'none'})",
            ))
    return problems


def project_violations(
    policy: TenancyPolicy, namespace: str, spec: DevOpsProjectSpec, labels: Mapping[str, str] | None = None
) -> list[Problem]:
    """What in a DevOpsProject breaks the policy for its namespace (empty when it may be used)."""
    rule = policy.rule_for(namespace, labels)
    problems: list[Problem] = []
    if spec.aws.endpoint_url:
        if not rule.endpoint_overrides:
            problems.append(_denied(
                "spec.aws.endpointUrl", rule, namespace,
                "endpoint overrides are not allowed here: remove endpointUrl (the operator's configuration "
                "sets endpoints)",
            ))
        else:
            try:
                endpoint = parse_endpoint(spec.aws.endpoint_url)
            except EndpointError as exc:
                problems.append(_denied("spec.aws.endpointUrl", rule, namespace, str(exc)))
            else:
                if not policy.endpoint_host_allowed(endpoint):
                    problems.append(_denied(
                        "spec.aws.endpointUrl", rule, namespace,
                        f"host {endpoint.host_port} is not on the operator's endpoint allow-list "
                        f"({', '.join(policy.endpoint_hosts) or 'empty'})",
                    ))
    for index, env in enumerate(spec.environments):
        where = field_path(("environments", index))
        problems.extend(_credential_problems(f"{where}.credentials", env.credentials, rule, namespace))
        if env.discovery_credentials is not None:
            problems.extend(
                _credential_problems(f"{where}.discoveryCredentials", env.discovery_credentials, rule, namespace)
            )
        if env.runner.plan_credentials is not None:  # the plan identity is held to the same rule
            problems.extend(
                _credential_problems(f"{where}.runner.planCredentials", env.runner.plan_credentials, rule, namespace)
            )
        if rule.account_ids is not None and env.account_id not in rule.account_ids:
            stated = f"accountId {env.account_id}" if env.account_id else "no accountId"
            problems.append(_denied(
                f"{where}.accountId", rule, namespace,
                f"environment {env.name!r} has {stated}; this namespace may only use accounts "
                f"{', '.join(rule.account_ids) or 'none'}: set accountId to one of them",
            ))
    return problems


@dataclass(frozen=True)
class ReferenceGrant:
    """Whether objects of `referrer_namespace` may name a project of another namespace."""

    allowed: bool
    message: str = ""


def reference_grant(
    project_namespace: str,
    project_name: str,
    spec: DevOpsProjectSpec,
    referrer_namespace: str,
    referrer_labels: Mapping[str, str] | None = None,
) -> ReferenceGrant:
    """Same-namespace references always may; others need the project's allowedNamespaces or selector."""
    if referrer_namespace == project_namespace:
        return ReferenceGrant(True)
    if any(fnmatch.fnmatchcase(referrer_namespace, glob) for glob in spec.allowed_namespaces):
        return ReferenceGrant(True)
    selector = spec.allowed_namespace_selector
    if selector is not None and selector.matches(referrer_labels or {}):
        return ReferenceGrant(True)
    return ReferenceGrant(
        False,
        f"DevOpsProject {project_namespace}/{project_name} does not grant namespace {referrer_namespace!r}: "
        f"its owners may add {referrer_namespace!r} to spec.allowedNamespaces (or match it with "
        "spec.allowedNamespaceSelector), or use a project of this namespace",
    )


# --- hosts and namespaces a tenant's InfraDeployment names -----------------------------------------------


_SCP_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


def git_location(url: str) -> str | None:
    """What gitHosts globs are matched against: `host` and `host:port` of a URL or scp-like address,
    `file://` for a local path; None when the URL has no host the policy could name."""
    if url.startswith("file://") or url.startswith("/"):
        return "file://"
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme.lower() not in ("https", "http", "ssh", "git"):
            return None
        authority = rest.split("/", 1)[0]
        if "\\" in authority or not authority:
            return None
        authority = authority.rsplit("@", 1)[-1].lower()
        return authority or None
    # scp-like: [user@]host:path; `transport::address` is a remote helper (ext::, fd::), never a host.
    head, colon, path = url.partition(":")
    if not colon or path.startswith(":") or "/" in head or "\\" in head:
        return None
    host = head.rsplit("@", 1)[-1].lower()
    return host if _SCP_HOST.match(host) else None


def git_host_allowed(rule: TenancyRule, url: str) -> bool:
    """Whether the operator may ask `url` for a branch's head for a namespace under `rule`."""
    location = git_location(url)
    if location is None:
        return False
    host = location.rsplit(":", 1)[0] if location != "file://" and ":" in location else location
    for glob in rule.git_hosts:
        glob = glob.lower()
        if location == "file://":
            if glob == "file://":
                return True
            continue
        if _host_match(location, glob) or _host_match(host, glob):
            return True
    return False


def source_namespace_allowed(rule: TenancyRule, referrer_namespace: str, source_namespace: str) -> bool:
    """A Flux source of another namespace only where the rule's sourceNamespaces name it."""
    if source_namespace == referrer_namespace:
        return True
    return any(fnmatch.fnmatchcase(source_namespace, glob) for glob in rule.source_namespaces)
