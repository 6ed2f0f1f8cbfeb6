"""What the handlers share: configuration and the clients, built once in the start-up hook.

kopf passes it to every handler through `memo.runtime`; nothing else holds global clients.

It is also the operator's record of which DevOpsProjects may be used: a project is *admitted* when
its spec is valid and within the tenancy policy, and *verified* once every identity it names has
answered STS. The AWS session factory reads projects only from here, so a session is never handed out
for a project that is invalid, denied by policy, or not verified (DESIGN §6).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from devops_operator.admission import ApprovalPolicies
from devops_operator.api.devopsproject import CredentialsSource, DevOpsProjectSpec
from devops_operator.aws.errors import CredentialsError
from devops_operator.aws.session import AwsSessionFactory, ProjectAwsConfig
from devops_operator.config import OperatorConfig
from devops_operator.kube import secrets
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.tenancy import PolicySource, TenancyPolicy, TenancyRule

SecretKey = tuple[str, str]  # (namespace, name)


@dataclass
class _Admitted:
    spec: DevOpsProjectSpec
    aws: ProjectAwsConfig
    secrets: frozenset[SecretKey]


@dataclass
class Runtime:
    config: OperatorConfig
    kube: ApiClient
    aws: AwsSessionFactory
    tenancy: PolicySource
    approval_policies: ApprovalPolicies = None  # type: ignore[assignment]  # set by build()
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _admitted: dict[str, _Admitted] = field(default_factory=dict)
    _verified: set[str] = field(default_factory=set)
    # resourceVersion of every Secret a project uses, as the Secret watch last saw it.
    _secret_versions: dict[SecretKey, str] = field(default_factory=dict)
    # Projects whose credentials changed or failed on a call since they were verified: re-verify them now.
    _reverify: set[str] = field(default_factory=set)
    # Called with a project's key when its re-verification is asked for (the scheduler looks at it now).
    _reverify_listeners: list[Callable[[str], None]] = field(default_factory=list)

    @classmethod
    def build(cls, config: OperatorConfig, kube: ApiClient) -> Runtime:
        if config.tenancy_policy is not None:
            tenancy = PolicySource(config.tenancy_policy)
        elif config.tenancy_policy_file:
            tenancy = PolicySource(path=config.tenancy_policy_file)
        else:
            tenancy = PolicySource(TenancyPolicy(operator_namespace=config.operator_namespace))
        runtime = cls(config=config, kube=kube, aws=None, tenancy=tenancy)  # type: ignore[arg-type]
        runtime.approval_policies = ApprovalPolicies(kube, config.approval_policy_recheck_seconds)
        runtime.aws = AwsSessionFactory(
            projects=runtime.project_aws_config,
            secrets=runtime.read_secret,
            secret_version=runtime.secret_version,
            on_auth_failure=runtime.auth_failed,
        )
        return runtime

    # -- Kubernetes reads ----------------------------------------------------------------------------

    def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """A credentials Secret's data; a refusal to read it is a credentials problem with its fix."""
        try:
            return secrets.read_secret(self.kube, namespace, name)
        except ApiException as exc:
            if exc.status in (401, 403):
                raise CredentialsError(
                    f"the operator may not read Secret {namespace}/{name} ({exc.status} {exc.reason}): grant its "
                    f"ServiceAccount get on secrets in namespace {namespace}"
                ) from None
            raise

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The Namespace object's labels (empty when it does not exist): tenancy rules may select on them."""
        try:
            found = CoreV1Api(self.kube).read_namespace(namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        return dict(found.metadata.labels or {}) if found.metadata else {}

    def tenancy_rule(self, namespace: str) -> TenancyRule:
        """The tenancy policy's rule for a namespace now (its labels read only when a rule selects on them)."""
        policy = self.tenancy.current()
        return policy.rule_for(namespace, self.namespace_labels(namespace) if policy.uses_labels else {})

    # -- admitted and verified projects ---------------------------------------------------------------

    def admit_project(self, project_key: str, spec: DevOpsProjectSpec) -> None:
        """Record a valid, policy-conforming spec; its sessions are rebuilt and it is unverified until checked."""
        namespace = project_key.partition("/")[0]
        aws = spec.aws
        if not aws.endpoint_url and self.config.aws_endpoint_url:
            aws = aws.model_copy(update={"endpoint_url": self.config.aws_endpoint_url})
        config = ProjectAwsConfig(namespace=namespace, aws=aws, environments=tuple(spec.environments))
        used = frozenset(
            (namespace, creds.secret_ref.name)
            for env in spec.environments
            for creds in (env.credentials, env.discovery_credentials, env.runner.plan_credentials)
            if creds is not None and creds.source == CredentialsSource.SECRET and creds.secret_ref is not None
        )
        with self._lock:
            self._admitted[project_key] = _Admitted(spec=spec, aws=config, secrets=used)
            self._verified.discard(project_key)
            self._reverify.discard(project_key)  # this evaluation is the re-verification asked for
        self.aws.invalidate(project_key)

    def mark_verified(self, project_key: str, verified: bool) -> None:
        with self._lock:
            if verified and project_key in self._admitted:
                self._verified.add(project_key)
                self._reverify.discard(project_key)
            else:
                self._verified.discard(project_key)

    def forget_project(self, project_key: str) -> None:
        with self._lock:
            self._admitted.pop(project_key, None)
            self._verified.discard(project_key)
            self._reverify.discard(project_key)
        self.aws.invalidate(project_key)

    def is_verified(self, project_key: str) -> bool:
        with self._lock:
            return project_key in self._verified

    def admitted_spec(self, project_key: str) -> DevOpsProjectSpec | None:
        with self._lock:
            entry = self._admitted.get(project_key)
            return entry.spec if entry else None

    def project_aws_config(self, project_key: str) -> ProjectAwsConfig | None:
        """The session factory's view of an admitted project (None for any other)."""
        with self._lock:
            entry = self._admitted.get(project_key)
            if entry is None:
                return None
            verified = project_key in self._verified
        if entry.aws.verified != verified:
            entry.aws = ProjectAwsConfig(
                namespace=entry.aws.namespace, aws=entry.aws.aws, environments=entry.aws.environments,
                verified=verified,
            )
        return entry.aws

    # -- freshness -----------------------------------------------------------------------------------

    def auth_failed(self, project_key: str) -> None:
        """A call failed authentication: the project is unverified until its identities answer again."""
        with self._lock:
            self._verified.discard(project_key)
        self.request_reverification(project_key)

    def request_reverification(self, project_key: str) -> None:
        """Ask for the project's identities to be checked again soon (its Secret changed, a call failed)."""
        with self._lock:
            if project_key not in self._admitted:
                return
            self._reverify.add(project_key)
            listeners = list(self._reverify_listeners)
        for listener in listeners:
            listener(project_key)

    def on_reverification(self, listener: Callable[[str], None]) -> None:
        """Call `listener(project_key)` whenever a project's re-verification is asked for."""
        with self._lock:
            self._reverify_listeners.append(listener)

    def needs_reverification(self, project_key: str) -> bool:
        with self._lock:
            return project_key in self._reverify

    def secret_seen(self, namespace: str, name: str, resource_version: str | None) -> list[str]:
        """Record a Secret's resourceVersion (None: deleted); returns the projects that use it.

        Every Secret is recorded, not only those in use: a project admitted later must see a rotation
        that happens before its first session is built.
        """
        key = (namespace, name)
        with self._lock:
            if resource_version is None:
                self._secret_versions.pop(key, None)
            else:
                self._secret_versions[key] = resource_version
            return sorted(k for k, entry in self._admitted.items() if key in entry.secrets)

    def secret_version(self, namespace: str, name: str) -> str | None:
        with self._lock:
            return self._secret_versions.get((namespace, name))
