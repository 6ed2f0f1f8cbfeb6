"""The one AWS session factory: per-environment credentials, regions and client settings.

A DevOpsProject says, per environment, which region to use and how to get credentials for
three identities: `deploy` (Terraform applies and day-2 operations), `discovery` (the separate
IAM-management identity that grants permissions) and `plan` (the read-only identity of plan and
drift-check Jobs, `runner.planCredentials`; the operator only verifies it). This module turns that into boto3:

- `resolve_target(aws, env, identity)` is the pure part: which region, endpoint and
  credential recipe one (environment, identity) uses. It needs no AWS and is unit-tested.
- `AwsSessionFactory` builds one cached `boto3.Session` per (project, environment,
  identity) and one cached client per service on it, with the environment's region, the
  project's `endpointUrl` (moto, LocalStack) and botocore's adaptive retry mode.

Credential sources:

- ambient: the default boto3 chain (environment, shared config, container/instance role);
- irsa: the default chain too, which reads `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`
  injected by EKS for the pod's ServiceAccount;
- secret: static keys from a Secret in the project's namespace, read through an injected
  `SecretReader`, so this package does not depend on the Kubernetes client.

Any of them then assumes `roleArn` when it is set (with `externalId` and `sessionName`),
through botocore's refreshable credentials: the assumed-role keys are renewed before they
expire, so a long-running operator never uses stale ones.

Sessions and clients are cached and shared by the handler threads. boto3 sessions are not
thread-safe, so clients are created under a per-session lock; clients themselves are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials

from devops_operator.api.devopsproject import (
    AwsCredentials,
    AwsSecretReference,
    AwsSettings,
    CredentialsSource,
    DevOpsProjectSpec,
    EnvironmentPolicy,
)
from devops_operator.aws.errors import (
    AccountMismatchError,
    AwsConfigurationError,
    CredentialsError,
    ProjectNotVerifiedError,
    is_auth_failure,
)
from devops_operator.aws.metering import METER, AwsCallMeter

__all__ = [
    "AccountMismatchError",
    "AwsConfigurationError",
    "AwsSessionFactory",
    "AwsTarget",
    "CallerIdentity",
    "CredentialSpec",
    "CredentialsError",
    "Identity",
    "ProjectAwsConfig",
    "ProjectNotVerifiedError",
    "ProjectResolver",
    "SecretKeys",
    "SecretReader",
    "StaticKeys",
    "read_static_keys",
    "resolve_target",
]

Identity = Literal["deploy", "discovery", "plan"]
IDENTITIES: tuple[Identity, ...] = ("deploy", "discovery", "plan")
CREDENTIAL_FIELDS: dict[str, str] = {"deploy": "credentials", "discovery": "discoveryCredentials",
                                     "plan": "runner.planCredentials"}


class SecretReader(Protocol):
    """Reads a Secret's decoded data; returns None (or raises LookupError) when it does not exist."""

    def __call__(self, namespace: str, name: str, /) -> Mapping[str, str] | None: ...


# ---------------------------------------------------------------------------------------
# Resolution: pure, no AWS.


@dataclass(frozen=True)
class SecretKeys:
    """Where static keys live: a Secret and the names of its keys."""

    name: str
    access_key_id_key: str
    secret_access_key_key: str
    session_token_key: str | None = None

    @classmethod
    def from_reference(cls, ref: AwsSecretReference) -> SecretKeys:
        return cls(
            name=ref.name,
            access_key_id_key=ref.access_key_id_key,
            secret_access_key_key=ref.secret_access_key_key,
            session_token_key=ref.session_token_key,
        )


@dataclass(frozen=True)
class CredentialSpec:
    """How to obtain one identity's credentials."""

    source: CredentialsSource
    role_arn: str | None = None
    external_id: str | None = None
    session_name: str = "devops-operator"
    secret: SecretKeys | None = None


@dataclass(frozen=True)
class AwsTarget:
    """Everything needed to talk to AWS as one identity of one environment."""

    environment: str
    identity: Identity
    region: str
    endpoint_url: str | None
    credentials: CredentialSpec
    account_id: str | None = None
    environment_index: int | None = None

    @property
    def credentials_field(self) -> str:
        """The spec field these credentials come from, for messages."""
        return credentials_field(self.environment, self.identity, self.environment_index)


def credentials_field(environment: str, identity: str, index: int | None = None) -> str:
    """`spec.environments[0].credentials`, as Kubernetes names fields (by name only when the index is unknown)."""
    name = CREDENTIAL_FIELDS.get(identity, identity)
    return f"spec.environments[{environment if index is None else index}].{name}"


def _identity_credentials(env: EnvironmentPolicy, identity: str) -> AwsCredentials:
    if identity == "deploy":
        return env.credentials
    if identity == "plan":
        if env.runner.plan_credentials is None:
            raise AwsConfigurationError(
                f"Environment {env.name!r} has no runner.planCredentials: plans there run with the deploy "
                "identity (or, in production, are refused): set spec.environments[].runner.planCredentials."
            )
        return env.runner.plan_credentials
    if identity != "discovery":
        raise AwsConfigurationError(f"Unknown AWS identity {identity!r}: use one of {', '.join(IDENTITIES)}.")
    if env.discovery_credentials is None:
        raise AwsConfigurationError(
            f"Environment {env.name!r} has no discoveryCredentials, so the operator has no IAM-management "
            "identity there: set spec.environments[].discoveryCredentials (an IRSA role allowed to manage "
            "IAM policies) to let it grant permissions."
        )
    return env.discovery_credentials


def _credential_spec(creds: AwsCredentials, where: str) -> CredentialSpec:
    source = CredentialsSource(creds.source)
    secret = SecretKeys.from_reference(creds.secret_ref) if creds.secret_ref else None
    if source is CredentialsSource.SECRET and secret is None:
        raise CredentialsError(
            f"{where} has source: secret but no secretRef: add secretRef.name (a Secret with "
            "aws_access_key_id and aws_secret_access_key) or use source: irsa."
        )
    return CredentialSpec(
        source=source,
        role_arn=creds.role_arn,
        external_id=creds.external_id,
        session_name=creds.session_name,
        secret=secret if source is CredentialsSource.SECRET else None,
    )


def resolve_target(
    aws: AwsSettings, env: EnvironmentPolicy, identity: Identity = "deploy", index: int | None = None
) -> AwsTarget:
    """The region, endpoint and credential recipe of one identity in one environment."""
    creds = _identity_credentials(env, identity)
    return AwsTarget(
        environment=env.name,
        identity=identity,
        region=env.region or aws.region,
        endpoint_url=aws.endpoint_url or None,
        credentials=_credential_spec(creds, credentials_field(env.name, identity, index)),
        account_id=env.account_id,
        environment_index=index,
    )


@dataclass(frozen=True)
class ProjectAwsConfig:
    """The AWS part of one DevOpsProject, as the factory needs it.

    `verified` is whether the operator has checked every identity of the project with STS since it
    last changed: only then does the factory hand out sessions for work (identity checks themselves
    run before it, through `caller_identity`).
    """

    namespace: str
    aws: AwsSettings
    environments: tuple[EnvironmentPolicy, ...]
    verified: bool = False

    @classmethod
    def from_spec(cls, namespace: str, spec: DevOpsProjectSpec, *, verified: bool = False) -> ProjectAwsConfig:
        return cls(namespace=namespace, aws=spec.aws, environments=tuple(spec.environments), verified=verified)

    def index(self, name: str) -> int | None:
        """Position of the environment in spec.environments (for field paths in messages)."""
        return next((i for i, env in enumerate(self.environments) if env.name == name), None)

    def environment(self, name: str) -> EnvironmentPolicy:
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(env.name for env in self.environments) or "none"
        raise AwsConfigurationError(
            f"Environment {name!r} is not defined in the DevOpsProject (defined: {known}): "
            "add it to spec.environments or fix the environment name."
        )


class ProjectResolver(Protocol):
    """Finds a project's AWS configuration by key (e.g. "namespace/name"); None when unknown."""

    def __call__(self, project_key: str, /) -> ProjectAwsConfig | None: ...


class SecretVersion(Protocol):
    """The resourceVersion of a Secret as last seen by the operator's watch; None when not seen."""

    def __call__(self, namespace: str, name: str, /) -> str | None: ...


# ---------------------------------------------------------------------------------------
# Credentials.


@dataclass(frozen=True)
class StaticKeys:
    """Static keys read from a Secret (values never appear in repr or messages)."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _read_secret(reader: SecretReader, namespace: str, secret: SecretKeys, where: str) -> Mapping[str, str]:
    try:
        data = reader(namespace, secret.name)
    except LookupError:
        data = None
    if data is None:
        raise CredentialsError(
            f"Secret {namespace}/{secret.name} named in {where}.secretRef was not found: create it with keys "
            f"{secret.access_key_id_key} and {secret.secret_access_key_key} (kubectl -n {namespace} create "
            f"secret generic {secret.name} --from-literal={secret.access_key_id_key}=... "
            f"--from-literal={secret.secret_access_key_key}=...), or switch to source: irsa."
        )
    return data


def _secret_value(
    data: Mapping[str, str], key: str, namespace: str, secret: SecretKeys, field_name: str
) -> str:
    value = (data.get(key) or "").strip()
    if not value:
        present = ", ".join(sorted(data)) or "none"
        raise CredentialsError(
            f"Secret {namespace}/{secret.name} has no (or an empty) key {key!r} (keys present: {present}): "
            f"add it, or set secretRef.{field_name} to the key that holds it."
        )
    return value


def read_static_keys(reader: SecretReader, namespace: str, secret: SecretKeys, where: str) -> StaticKeys:
    """Static keys from the Secret, or a CredentialsError naming the Secret, the key and the fix."""
    data = _read_secret(reader, namespace, secret, where)
    token = None
    if secret.session_token_key:
        token = _secret_value(data, secret.session_token_key, namespace, secret, "sessionTokenKey")
    return StaticKeys(
        access_key_id=_secret_value(data, secret.access_key_id_key, namespace, secret, "accessKeyIdKey"),
        secret_access_key=_secret_value(
            data, secret.secret_access_key_key, namespace, secret, "secretAccessKeyKey"
        ),
        session_token=token,
    )


class _FixedCredentialProvider(CredentialProvider):
    """A credential chain of one: the assumed-role credentials built by the factory."""

    METHOD = "devops-operator-assume-role"
    CANONICAL_NAME = "custom-devops-operator"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _assume_role_refresher(
    sts: Any, spec: CredentialSpec, duration_seconds: int
) -> Callable[[], dict[str, str]]:
    """A botocore refresh callback: assume the role again and return the new keys' metadata."""
    params: dict[str, Any] = {
        "RoleArn": spec.role_arn,
        "RoleSessionName": spec.session_name,
        "DurationSeconds": duration_seconds,
    }
    if spec.external_id:
        params["ExternalId"] = spec.external_id

    def refresh() -> dict[str, str]:
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return refresh


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str
    user_id: str


# ---------------------------------------------------------------------------------------
# The factory.

_SessionKey = tuple[str, str, str]


@dataclass
class _SessionEntry:
    target: AwsTarget
    session: boto3.Session
    # The credentials Secret's resourceVersion the keys were read at: a rotated Secret rebuilds.
    secret_version: str | None = None
    # The identity STS returned while enforcing accountId at build time, for the next verification.
    checked_caller: CallerIdentity | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: dict[str, Any] = field(default_factory=dict)


class AwsSessionFactory:
    """One cached boto3 session per (project, environment, identity) and one client per service.

    `projects` maps a project key to its AWS configuration (None when unknown); `secrets`
    reads a Secret's decoded data, needed only by `source: secret`. Call `invalidate` when a
    DevOpsProject (or a credentials Secret) changes; the next call rebuilds from `projects`.

    `max_attempts` counts every attempt including the first (botocore's `total_max_attempts`,
    like AWS_MAX_ATTEMPTS); botocore's own `retries.max_attempts` would count retries only.

    Freshness: with `secret_version`, a session built from a Secret's keys is rebuilt as soon as the
    Secret's resourceVersion moves (a rotated key is used at once); an authentication failure on any
    call (an expired or revoked key) drops the project's sessions and calls `on_auth_failure(project)`
    so the project is verified again; an environment's `accountId` is enforced when a session is built.
    """

    def __init__(
        self,
        projects: ProjectResolver,
        secrets: SecretReader | None = None,
        *,
        secret_version: SecretVersion | None = None,
        on_auth_failure: Callable[[str], None] | None = None,
        meter: AwsCallMeter | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 20,
        assume_role_duration_seconds: int = 3600,
        user_agent_extra: str = "devops-operator",
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._projects = projects
        self._secrets = secrets
        self._secret_version = secret_version
        self._on_auth_failure = on_auth_failure
        self._meter = meter if meter is not None else METER
        self._assume_role_duration = assume_role_duration_seconds
        self.client_config = Config(
            retries={"mode": "adaptive", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
            user_agent_extra=user_agent_extra,
        )
        self._lock = threading.Lock()
        self._loader = botocore.loaders.create_loader()
        self._entries: dict[_SessionKey, _SessionEntry] = {}
        self._generations: dict[str, int] = {}  # bumped by invalidate(project)
        self._epoch = 0  # bumped by clear()

    # -- public API ------------------------------------------------------------------

    def target(self, project_key: str, environment: str, identity: Identity = "deploy") -> AwsTarget:
        """The resolved target of (project, environment, identity); no AWS call."""
        config = self._project(project_key)
        return resolve_target(config.aws, config.environment(environment), identity, config.index(environment))

    def session(self, project_key: str, environment: str, identity: Identity = "deploy") -> boto3.Session:
        """The cached session; build clients through `client` (sessions are not thread-safe)."""
        return self._entry(project_key, environment, identity, for_work=True).session

    def client(self, project_key: str, environment: str, service: str, identity: Identity = "deploy", *,
               region: str | None = None) -> Any:
        """The cached client of one service (thread-safe, shareable between handler threads).

        Only for a project whose identities the operator has verified (ProjectNotVerifiedError otherwise).
        `region` reaches a resource outside the environment's region with the same credentials and endpoint.
        Typed as Any because the service is chosen at run time; annotate the variable with the
        mypy_boto3 client type where it helps, e.g. `cw: CloudWatchClient = factory.client(...)`.
        """
        return self._client(self._entry(project_key, environment, identity, for_work=True), service, region)

    def caller_identity(
        self, project_key: str, environment: str, identity: Identity = "deploy"
    ) -> CallerIdentity:
        """Who the credentials are (sts:GetCallerIdentity), checked against the environment's accountId.

        This is how a project gets verified, so it is the one call allowed before it is.
        """
        entry = self._entry(project_key, environment, identity, for_work=False)
        checked, entry.checked_caller = entry.checked_caller, None
        return checked or self._check_account(entry, self._whoami(entry))

    def invalidate(self, project_key: str) -> None:
        """Drop a project's cached sessions and clients; the next call rebuilds them."""
        with self._lock:
            self._generations[project_key] = self._generations.get(project_key, 0) + 1
            for key in [key for key in self._entries if key[0] == project_key]:
                del self._entries[key]

    def clear(self) -> None:
        """Drop every cached session and client."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()

    # -- internals -------------------------------------------------------------------

    def _project(self, project_key: str) -> ProjectAwsConfig:
        config = self._projects(project_key)
        if config is None:
            raise AwsConfigurationError(
                f"DevOpsProject {project_key!r} is unknown to the operator: create it, or fix the reference "
                "to it (name and namespace)."
            )
        return config

    def _entry(self, project_key: str, environment: str, identity: Identity, *, for_work: bool) -> _SessionEntry:
        key = (project_key, environment, identity)
        with self._lock:
            generation = self._generation(project_key)  # before the lookup: a change during it shows
        config = self._project(project_key)
        if for_work and not config.verified:
            raise ProjectNotVerifiedError(
                f"DevOpsProject {project_key} has not been verified by the operator (its spec is invalid, "
                "breaks the tenancy policy, or its identities are not checked yet): no AWS session is handed "
                "out for it until it is Ready."
            )
        with self._lock:
            entry = self._entries.get(key) if self._generation(project_key) == generation else None
        if entry is not None and not self._secret_rotated(entry, config.namespace):
            return entry
        target = resolve_target(config.aws, config.environment(environment), identity, config.index(environment))
        secret = target.credentials.secret
        # Recorded before reading: a rotation during the read shows as a mismatch and rebuilds once more.
        version = self._current_secret_version(config.namespace, secret.name) if secret else None
        built = _SessionEntry(
            target=target, session=self._build(target, config.namespace, project_key), secret_version=version
        )
        if target.account_id:
            checked = self._check_account(built, None)
            built.checked_caller = checked if checked.user_id else None  # a real STS answer only
        with self._lock:
            if self._generation(project_key) != generation:
                return built  # invalidated while building: serve this call, cache nothing stale
            existing = self._entries.get(key)
            if existing is not None and existing.secret_version == built.secret_version:
                return existing  # another thread built the same session first: share one
            self._entries[key] = built
            return built

    def _current_secret_version(self, namespace: str, name: str) -> str | None:
        return self._secret_version(namespace, name) if self._secret_version else None

    def _secret_rotated(self, entry: _SessionEntry, namespace: str) -> bool:
        secret = entry.target.credentials.secret
        if secret is None or self._secret_version is None:
            return False
        return self._current_secret_version(namespace, secret.name) != entry.secret_version

    def _whoami(self, entry: _SessionEntry) -> CallerIdentity:
        found = self._client(entry, "sts").get_caller_identity()
        return CallerIdentity(account=found["Account"], arn=found["Arn"], user_id=found["UserId"])

    def _check_account(self, entry: _SessionEntry, who: CallerIdentity | None) -> CallerIdentity:
        """Enforce the environment's accountId: from the role ARN when one is assumed (no call), else STS."""
        target = entry.target
        role_account = _arn_account(target.credentials.role_arn) if target.credentials.role_arn else None
        if who is None and role_account is not None:
            who = CallerIdentity(account=role_account, arn=str(target.credentials.role_arn), user_id="")
        if who is None:
            who = self._whoami(entry)
        if target.account_id and who.account != target.account_id:
            raise AccountMismatchError(
                f"{target.credentials_field} resolve to {who.arn} in account {who.account}, but the "
                f"environment expects account {target.account_id}: fix the credentials or accountId."
            )
        return who

    def _generation(self, project_key: str) -> tuple[int, int]:
        return (self._epoch, self._generations.get(project_key, 0))

    def _client(self, entry: _SessionEntry, service: str, region: str | None = None) -> Any:
        region = region or entry.target.region
        key = service if region == entry.target.region else f"{service}@{region}"
        with entry.lock:
            client = entry.clients.get(key)
            if client is None:
                client = entry.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=entry.target.endpoint_url,
                    config=self.client_config,
                )
                entry.clients[key] = client
            return client

    def _build(self, target: AwsTarget, namespace: str, project_key: str) -> boto3.Session:
        base = self._base_session(target, namespace, project_key)
        if not target.credentials.role_arn:
            return base
        return self._assumed_session(base, target, project_key)

    def _watch_auth_failures(self, session: boto3.Session, project_key: str) -> None:
        """An expired or revoked key anywhere drops the project's sessions and asks for re-verification."""

        def after_call(parsed: Any = None, **_: Any) -> None:
            error = parsed.get("Error") if isinstance(parsed, Mapping) else None
            code = error.get("Code") if isinstance(error, Mapping) else None
            if isinstance(code, str) and is_auth_failure(code):
                self.invalidate(project_key)
                if self._on_auth_failure is not None:
                    self._on_auth_failure(project_key)

        session.events.register("after-call", after_call, unique_id=f"devops-operator-auth-{id(session)}")

    def _base_session(self, target: AwsTarget, namespace: str, project_key: str) -> boto3.Session:
        spec = target.credentials
        if spec.source is CredentialsSource.SECRET and spec.secret is not None:
            keys = read_static_keys(
                self._require_secrets(target), namespace, spec.secret, target.credentials_field
            )
            session = self._boto3_session(
                aws_access_key_id=keys.access_key_id,
                aws_secret_access_key=keys.secret_access_key,
                aws_session_token=keys.session_token,
                region_name=target.region,
            )
        else:
            session = self._boto3_session(region_name=target.region)
        self._meter.attach(session)
        self._watch_auth_failures(session, project_key)
        return session

    def _boto3_session(self, core: botocore.session.Session | None = None, **kwargs: Any) -> boto3.Session:
        """A boto3 session whose botocore session shares the factory's model loader.

        Each botocore session otherwise parses and keeps its own copy of every service model it
        touches (~8 MiB and tens of milliseconds per session and service): with one session per
        project, environment and identity, sharing the loader is what keeps the operator small.
        """
        core = core or botocore.session.Session()
        core.register_component("data_loader", self._loader)
        session = boto3.Session(botocore_session=core, **kwargs)
        with self._lock:
            # boto3 appends its data directory to the loader's search path on every new session.
            self._loader.search_paths[:] = list(dict.fromkeys(self._loader.search_paths))
        return session

    def _require_secrets(self, target: AwsTarget) -> SecretReader:
        if self._secrets is None:
            raise CredentialsError(
                f"{target.credentials_field} uses source: secret, but this operator was started without "
                "access to Secrets: grant it get on secrets in the project's namespace, or use source: irsa."
            )
        return self._secrets

    def _assumed_session(self, base: boto3.Session, target: AwsTarget, project_key: str) -> boto3.Session:
        sts = base.client(
            "sts", region_name=target.region, endpoint_url=target.endpoint_url, config=self.client_config
        )
        credentials = DeferredRefreshableCredentials(
            refresh_using=_assume_role_refresher(sts, target.credentials, self._assume_role_duration),
            method="assume-role",
        )
        core = botocore.session.Session()
        core.register_component(
            "credential_provider", CredentialResolver([_FixedCredentialProvider(credentials)])
        )
        session = self._boto3_session(core, region_name=target.region)
        self._meter.attach(session)
        self._watch_auth_failures(session, project_key)
        return session


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None
