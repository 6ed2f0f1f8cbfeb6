"""What goes into a plan besides the module: sources checked, varsFrom named by resourceVersion, the backend,
the engine, the runner's environment; its digest; and the runner request built from it.

Everything a spec names is checked here before a Job is started, so bad input stalls with the field and
its fix instead of failing inside a Job: a missing ConfigMap source or one whose keys would decode to
paths outside the workspace, a git credentials Secret without usable keys, a Flux source with no
artifact, a varsFrom object that does not exist.

A Flux source in another namespace is refused before anything is read, unless the tenancy policy's rule
for the deployment's namespace lists that namespace in `sourceNamespaces` (Flux's own
`--no-cross-namespace-refs` model): the refusal says the same whether the source exists or not, so it
tells a tenant nothing about another namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import AwsCredentials, CredentialsSource, TerraformEngine
from devops_operator.api.infradeployment import InfraDeploymentSpec
from devops_operator.config import OperatorConfig
from devops_operator.deploy import runner_policy
from devops_operator.deploy.runner_policy import RunnerChoice, StepIdentity
from devops_operator.digests import digest as digest_of
from devops_operator.digests import short_digest
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.projectrefs import ProjectAccess
from devops_operator.runner.sources import SourceError, config_map_files, module_path
from devops_operator.tenancy import DEFAULT_RULE, TenancyRule, source_namespace_allowed
from devops_operator.terraform.backends import BackendSettings, legacy_sharers, resolve_backend, state_secret_name
from devops_operator.terraform.identity import inputs_digest
from devops_operator.terraform.jobs import JobSettings
from devops_operator.terraform.request import RunRequest, plan_key_env

CREDENTIALS_SOURCE_ENV = "DEVOPS_CREDENTIALS_SOURCE"
EXPECTED_ACCOUNT_ENV = "DEVOPS_EXPECTED_ACCOUNT_ID"

FLUX_GROUP = "source.toolkit.fluxcd.io"
FLUX_PLURALS = {"GitRepository": ("v1", "gitrepositories"), "OCIRepository": ("v1beta2", "ocirepositories"),
                "Bucket": ("v1", "buckets")}


class InputError(Exception):
    """A spec field names something that cannot be used; `waiting` when creating it later fixes it."""

    def __init__(self, reason: str, field: str, message: str, *, waiting: bool = True) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = reason
        self.field = field
        self.waiting = waiting


@dataclass(frozen=True)
class ResolvedInputs:
    digest: str
    request_key: str
    source: dict[str, Any]  # the wire source, plus "artifact" for Flux
    vars_from: list[dict[str, Any]]
    base: RunRequest
    job: JobSettings  # the apply Job's: the deploy identity and ServiceAccount
    plan_job: JobSettings  # plan, drift-check and destroy-plan Jobs': the environment's plan identity
    runner: RunnerChoice
    # sha256 of what runs and as whom (image, resources, deadline, each step's ServiceAccount and identity,
    # the container env): the part of the digest a destroy plan binds too, whose other inputs are the snapshot's.
    runner_digest: str = ""
    # Where the Kubernetes backend keeps the state (status.state): namespace, secretSuffix, legacy; None for s3.
    state: dict[str, Any] | None = None

    def job_for(self, step: str) -> JobSettings:
        return self.plan_job if step in runner_policy.PLAN_STEPS else self.job


def _get(api: ApiClient, path: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = call_json(api, "GET", path, timeout=REQUEST_TIMEOUT)
        return found
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def source_ref_refusal(rule: TenancyRule, namespace: str, spec: InfraDeploymentSpec) -> InputError | None:
    """A sourceRef into a namespace the policy does not let this one read (pure: decided before any read)."""
    ref = spec.source.source_ref
    if ref is None or not ref.namespace or source_namespace_allowed(rule, namespace, ref.namespace):
        return None
    allowed = ", ".join(rule.source_namespaces) or "none"
    return InputError(
        "PolicyDenied", "spec.source.sourceRef.namespace",
        f"Flux sources of namespace {ref.namespace!r} may not be named from namespace {namespace!r} (tenancy policy "
        f"rule {rule.name!r} allows sourceNamespaces: {allowed}): create the {ref.kind} in {namespace!r}, or ask the "
        "platform team to add the namespace to the rule's sourceNamespaces",
    )


def _source(api: ApiClient, namespace: str, spec: InfraDeploymentSpec,
            rule: TenancyRule | None = None) -> dict[str, Any]:
    refused = source_ref_refusal(rule or TenancyRule(name=DEFAULT_RULE), namespace, spec)
    if refused is not None:
        raise refused
    source = spec.source.to_wire()
    if spec.source.config_map_ref is not None:
        name = spec.source.config_map_ref.name
        found = _get(api, f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if found is None:
            raise InputError("SourceNotFound", "spec.source.configMapRef.name",
                             f"ConfigMap {namespace}/{name} does not exist: create it with the module's files")
        try:  # the runner refuses such keys too; here no Job is started for them
            config_map_files(namespace, name, found.get("data") or {})
        except SourceError as exc:
            raise InputError("UnsafeSourceKey", exc.field, exc.message) from None
    if spec.source.git is not None and spec.source.git.credentials_secret_ref is not None:
        name = spec.source.git.credentials_secret_ref.name
        secret = _get(api, f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            raise InputError("GitCredentialsNotFound", "spec.source.git.credentialsSecretRef.name",
                             f"Secret {namespace}/{name} does not exist: create it with username and password, or "
                             "identity and known_hosts")
        keys = set((secret.get("data") or {}) | (secret.get("stringData") or {}))
        if not ({"username", "password"} <= keys or "identity" in keys):
            raise InputError("GitCredentialsUnreadable", "spec.source.git.credentialsSecretRef.name",
                             f"Secret {namespace}/{name} has neither username and password nor identity (it has "
                             f"{', '.join(sorted(keys)) or 'no keys'}): add those keys", waiting=False)
    if spec.source.source_ref is not None:
        ref = spec.source.source_ref
        version, plural = FLUX_PLURALS[str(ref.kind)]
        ns = ref.namespace or namespace
        try:
            found = _get(api, f"/apis/{FLUX_GROUP}/{version}/namespaces/{ns}/{plural}/{ref.name}")
        except ApiException as exc:
            found = None if exc.status in (403, 404) else exc  # type: ignore[assignment]
            if isinstance(found, ApiException):
                raise
        if found is None:
            raise InputError("SourceNotFound", "spec.source.sourceRef",
                             f"Flux {ref.kind} {ns}/{ref.name} does not exist (is Flux installed?): create it or fix "
                             "the reference")
        artifact = (found.get("status") or {}).get("artifact") or {}
        if not artifact.get("url") or not artifact.get("digest"):
            raise InputError("SourceArtifactMissing", "spec.source.sourceRef",
                             f"Flux {ref.kind} {ns}/{ref.name} has no artifact yet (status.artifact): wait for Flux "
                             f"to fetch it, or see `kubectl -n {ns} describe {plural} {ref.name}`")
        source["artifact"] = {k: artifact.get(k) for k in ("url", "digest", "revision")}
    return source


def _vars_from(api: ApiClient, namespace: str, spec: InfraDeploymentSpec) -> list[dict[str, Any]]:
    """varsFrom as the digest sees them: object, keys and resourceVersion (never the values)."""
    named = []
    for index, item in enumerate(spec.vars_from):
        plural = "secrets" if item.kind == "Secret" else "configmaps"
        found = _get(api, f"/api/v1/namespaces/{namespace}/{plural}/{item.name}")
        if found is None and not item.optional:
            raise InputError("VariablesNotFound", f"spec.varsFrom[{index}]",
                             f"{item.kind} {namespace}/{item.name} does not exist: create it, or set optional: true")
        if found is not None:
            present = set(found.get("data") or {})
            missing = [k for k in item.keys if k not in present]
            if missing and not item.optional:
                raise InputError("VariablesNotFound", f"spec.varsFrom[{index}].keys",
                                 f"{item.kind} {namespace}/{item.name} has no key {missing[0]!r}: add it or drop it")
        named.append({"kind": str(item.kind), "name": item.name, "keys": list(item.keys), "optional": item.optional,
                      "resourceVersion": (found or {}).get("metadata", {}).get("resourceVersion")})
    return named


def _planned_before(status: Mapping[str, Any]) -> bool:
    """Whether the operator made a plan for the deployment before: its state may live under the old name."""
    return bool(status.get("plan") or status.get("lastAppliedPlanId") or status.get("deletion"))


def _uses_legacy(other: Mapping[str, Any], state_namespace: str, legacy: str) -> bool:
    """Whether another deployment keeps (or may keep) the legacy state named `legacy` (from its status)."""
    status = other.get("status") or {}
    recorded = status.get("state")
    if recorded:
        return bool(recorded.get("legacy")) and (recorded.get("namespace"), recorded.get("secretSuffix")) == (
            state_namespace, legacy)
    return _planned_before(status)


def _state_name(api: ApiClient, namespace: str, name: str, status: Mapping[str, Any],
                backend: BackendSettings) -> tuple[BackendSettings, dict[str, Any] | None]:
    """The backend with the state name to use, and what status.state records (issue 14, 13d).

    The unambiguous name, unless the deployment already has state under the old one: it planned before
    (status.plan, written by the operator) and recorded no other name since (a deployment created after
    the upgrade records the new name with its first plan, so it never takes an old name that happens to
    be another's), that state Secret exists (or an older operator's apply Job runs and may write it yet),
    and no other deployment the old naming gave the same name may have used it too: then both are
    Stalled, since one state cannot be split by name.
    """
    if backend.type != "kubernetes" or backend.namespace is None or backend.secret_suffix is None:
        return backend, None
    current = dataclasses.replace(backend, legacy_suffix=None)
    record = {"namespace": backend.namespace, "secretSuffix": backend.secret_suffix, "legacy": False}
    legacy = backend.legacy_suffix
    recorded = status.get("state") or {}
    if legacy is None or (recorded and not recorded.get("legacy")) or not _planned_before(status):
        return current, record
    if recorded and (recorded.get("namespace"), recorded.get("secretSuffix")) != (backend.namespace, legacy):
        return current, record  # the backend moved since: its new place has no old state
    secret = state_secret_name(legacy)
    try:
        exists = _get(api, f"/api/v1/namespaces/{backend.namespace}/secrets/{secret}") is not None
    except ApiException as exc:
        if exc.status != 403:
            raise
        exists = True  # not readable by the operator: keeping the old name can never orphan a state
    jobs = status.get("jobs") or {}
    if not exists and not (jobs.get("current") and jobs.get("step") == "apply"):  # an older apply may write it yet
        return current, record
    sharers = []
    for other_namespace, other_name in legacy_sharers(deployment=name, deployment_namespace=namespace,
                                                      state_namespace=backend.namespace):
        other = _get(api, f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{other_namespace}/infradeployments/"
                          f"{other_name}")
        if other is not None and _uses_legacy(other, backend.namespace, legacy):
            sharers.append(f"{other_namespace}/{other_name}")
    if sharers:
        raise InputError(
            "LegacyStateShared", "spec.backend",
            f"the state Secret {backend.namespace}/{secret} was named the same for this deployment and "
            f"{', '.join(sharers)} by operators before the state naming fix, so it may hold the state of either: "
            "nothing is planned or applied for either until one of them is removed (annotate it "
            "deploy.devops.fractary.io/abandon=true and delete it, import its resources again into a state of its "
            "own); see docs/operations.md, Upgrading", waiting=True)
    return (dataclasses.replace(backend, secret_suffix=legacy, legacy_suffix=None),
            {"namespace": backend.namespace, "secretSuffix": legacy, "legacy": True})


def _credentials_env(api: ApiClient, access: ProjectAccess, namespace: str, creds: AwsCredentials,
                     origin: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The container env of one step's AWS identity, and that identity as the plan id binds it.

    A role is assumed by the runner for every source that names one (irsa too: web identity, then
    sts:AssumeRole), and the account is checked against the environment's accountId before the engine starts.
    """
    env: list[dict[str, Any]] = [{"name": CREDENTIALS_SOURCE_ENV, "value": str(creds.source)}]
    bound: dict[str, Any] = {"origin": origin, "source": str(creds.source), "roleArn": creds.role_arn,
                             "externalId": creds.external_id, "sessionName": creds.session_name,
                             "accountId": access.environment.account_id}
    field = origin.split(" ")[0]
    if creds.source == CredentialsSource.SECRET and creds.secret_ref is not None:
        if access.namespace != namespace:
            raise InputError("CredentialsNotReachable", "spec.projectRef",
                             f"environment {access.environment.name} of DevOpsProject {access.key} uses keys from a "
                             f"Secret in namespace {access.namespace} ({field}), which a runner Job in {namespace} "
                             "cannot read: use IRSA (source: irsa) or deploy from the project's namespace",
                             waiting=False)
        ref = creds.secret_ref
        secret = _get(api, f"/api/v1/namespaces/{namespace}/secrets/{ref.name}")
        bound["secret"] = {"name": ref.name, "resourceVersion": ((secret or {}).get("metadata") or {}).get(
            "resourceVersion"), "keys": [ref.access_key_id_key, ref.secret_access_key_key, ref.session_token_key]}
        env += [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": ref.name,
                                                                              "key": ref.access_key_id_key}}},
                {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": ref.name,
                                                                                  "key": ref.secret_access_key_key}}}]
        if ref.session_token_key:
            env.append({"name": "AWS_SESSION_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name,
                                                                                     "key": ref.session_token_key}}})
    if creds.role_arn:
        env.append({"name": "DEVOPS_ASSUME_ROLE_ARN", "value": creds.role_arn})
        env.append({"name": "DEVOPS_ASSUME_ROLE_SESSION", "value": creds.session_name})
        if creds.external_id:
            env.append({"name": "DEVOPS_ASSUME_ROLE_EXTERNAL_ID", "value": creds.external_id})
    if access.environment.account_id:
        env.append({"name": EXPECTED_ACCOUNT_ENV, "value": access.environment.account_id})
    return env, bound


def _runner_choice(access: ProjectAccess, spec: InfraDeploymentSpec, vars_from: list[dict[str, Any]]) -> RunnerChoice:
    """The owner's runner settings for this environment; a deployment asking for more is refused here."""
    index = runner_policy.environment_index(access.spec, access.environment.name)
    env_field = f"spec.environments[{index}]"
    forbidden = runner_policy.credential_secrets(access.spec)
    refusals = runner_policy.override_refusals(spec.runner, access.key, env_field)
    refusals += runner_policy.env_refusals(spec.runner.env, access.environment, access.key, env_field, forbidden)
    for position, item in enumerate(vars_from):
        if item["kind"] == "Secret" and item["name"] in forbidden:
            refusals.append(runner_policy.Refusal(
                "RunnerSecretNotAllowed", f"spec.varsFrom[{position}].name",
                f"Secret {item['name']} holds AWS keys of DevOpsProject {access.key}: variables may never read "
                "them (the operator passes each Job only the identity of its step); remove the entry"))
    if refusals:
        first = refusals[0]
        more = "; ".join(f"{r.field}: {r.message}" for r in refusals[1:3])
        raise InputError(first.reason, first.field, first.message + (f"; also {more}" if more else ""),
                         waiting=False)
    choice = runner_policy.runner_choice(access.spec, access.environment, access.key, env_field)
    if isinstance(choice, runner_policy.Refusal):
        raise InputError(choice.reason, choice.field, choice.message, waiting=True)
    return choice


def resolve(api: ApiClient, config: OperatorConfig, namespace: str, name: str, owner: Mapping[str, Any],
            spec: InfraDeploymentSpec, access: ProjectAccess, replans: int,
            dependencies: Mapping[str, str] | None = None, git_revision: str | None = None,
            rule: TenancyRule | None = None) -> ResolvedInputs:
    """Check everything the spec names and build the digest, the request key and the runner request.

    `git_revision` is the commit the git source's branch names now (deploy/revisions.py): part of the
    request, so a new commit plans again. `rule`: the tenancy policy's rule for `namespace` (None: the
    default rule, which lets a sourceRef name only this namespace).
    What runs and as whom (image, ServiceAccounts, identities, resources, deadline, env) is part of the
    inputs digest, so changing any of it re-plans and voids an approval given to the old plan id.
    """
    project = access.spec
    terraform = project.terraform
    region = access.environment.region or project.aws.region
    source = _source(api, namespace, spec, rule)
    if git_revision and "git" in source:
        source["revision"] = git_revision
    vars_from = _vars_from(api, namespace, spec)
    choice = _runner_choice(access, spec, vars_from)
    backend, state = _state_name(api, namespace, name, owner.get("status") or {}, resolve_backend(
        spec.backend or terraform.backend, deployment=name, deployment_namespace=namespace,
        project_namespace=access.namespace, region=region))
    engine = str(spec.engine or terraform.engine or TerraformEngine.TERRAFORM)
    endpoint = project.aws.endpoint_url or config.aws_endpoint_url
    tenant_env: list[dict[str, Any]] = []
    for extra in spec.runner.env:
        if extra.secret_key_ref is not None:
            tenant_env.append({"name": extra.name, "valueFrom": {"secretKeyRef": extra.secret_key_ref.to_wire()}})
        else:
            tenant_env.append({"name": extra.name, "value": extra.value})
    # The operator's entries come after the tenant's (and reserved names are refused): none can be shadowed.
    operator_env: list[dict[str, Any]] = [{"name": "AWS_REGION", "value": region},
                                          {"name": "AWS_DEFAULT_REGION", "value": region}]
    if endpoint:
        operator_env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint})
    apply_env, apply_identity = _credentials_env(api, access, namespace, choice.apply.credentials,
                                                 choice.apply.origin)
    plan_env, plan_identity = _credentials_env(api, access, namespace, choice.plan.credentials, choice.plan.origin)
    resources = spec.runner.resources
    cpu, memory = resources.cpu or terraform.resources.cpu, resources.memory or terraform.resources.memory
    deadline = spec.runner.active_deadline_seconds or terraform.active_deadline_seconds
    runner = {"image": choice.image, "resources": {"cpu": cpu, "memory": memory,
                                                   "ephemeralStorage": resources.ephemeral_storage},
              "activeDeadlineSeconds": deadline, "backoffLimit": terraform.backoff_limit,
              "apply": {"serviceAccount": choice.apply.service_account, "identity": apply_identity},
              "plan": {"serviceAccount": choice.plan.service_account, "identity": plan_identity}}
    environment_variables = dict(access.environment.variables)
    container_env = {e["name"]: e.get("value", e.get("valueFrom")) for e in [*tenant_env, *operator_env]}
    digest = inputs_digest(
        variables={"environment": environment_variables, "spec": spec.variables},
        vars_from=vars_from, var_files=spec.var_files, backend=backend.describe(), engine=engine,
        engine_version=spec.terraform_version or terraform.version,
        environment_variables=container_env, dependencies=dependencies, runner=runner,
    )
    request_key = short_digest({"source": source, "inputs": digest, "replans": replans}, 16)

    def settings(identity: StepIdentity, credentials_env: list[dict[str, Any]]) -> JobSettings:
        return JobSettings(
            image=choice.image, service_account=identity.service_account, cpu=cpu, memory=memory,
            ephemeral_storage=resources.ephemeral_storage, active_deadline_seconds=deadline,
            backoff_limit=terraform.backoff_limit, tenant_env=tenant_env,
            # The plan-digest key is not an input (it never changes for a deployment): out of the digest.
            env=[*operator_env, *credentials_env, plan_key_env(name)],
        )

    outputs = spec.outputs
    base = RunRequest(
        step="plan", deployment=name, namespace=namespace,
        owner={k: owner[k] for k in ("apiVersion", "kind")} | {"metadata": {
            "name": owner["metadata"]["name"], "namespace": namespace, "uid": owner["metadata"]["uid"]}},
        source=source, module_path=module_path(source), engine=engine,
        engine_version=spec.terraform_version or terraform.version, backend_override=backend.override(),
        version_constraint=spec.terraform_version,
        variables=dict(spec.variables), environment_variables=environment_variables, var_files=list(spec.var_files),
        vars_from=[{k: v for k, v in item.items() if k != "resourceVersion"} for item in vars_from],
        inputs_digest=digest, replan=replans, artifact_secret=f"{name}-plan"[:200],
        outputs_config_map=outputs.config_map_name or f"{name}-outputs", outputs_secret=outputs.secret_name,
        output_names=list(outputs.names), inputs_snapshot_secret=f"{name}-inputs"[:253], region=region,
    )
    return ResolvedInputs(digest=digest, request_key=request_key, source=source, vars_from=vars_from, base=base,
                          job=settings(choice.apply, apply_env), plan_job=settings(choice.plan, plan_env),
                          runner=choice, runner_digest=digest_of({"runner": runner, "environment": container_env}),
                          state=state)
