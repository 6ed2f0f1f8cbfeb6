"""What one runner Job may touch through the Kubernetes API, as Role rules (pure), and its Role objects (I/O).

Plans run the tenant's module (providers, external data sources, local-exec in a destroy-time apply), so
whatever the runner's token can reach, the module can reach. The runner's ServiceAccount is chosen per
environment by the project owner and shared by every Job of it; the operator therefore binds it, per Job,
to a Role naming exactly the objects that Job reads or writes (issue 14, item 3):

- get, update, patch by name on what it writes: its own result Secret `<job>-result`, the state Secret and
  the lock Lease of the Kubernetes backend, and for an apply the outputs ConfigMap/Secret, the inputs
  snapshot Secret and the errored-state Secret;
- get by name on what it only reads: the source ConfigMap, the git credentials Secret, the varsFrom
  objects, the approved plan's artefact Secret(s) for an apply, the snapshot for a destroy;
- create on secrets (configmaps and leases where it creates one) without names: Kubernetes RBAC cannot
  limit create by resourceNames (the name is not known to the authorizer before the object exists), and
  create returns nothing that was there before, so it reads nothing.

Nothing else: no list or watch, no other Secret. AWS credential Secrets and the plan-digest key reach the
runner as `secretKeyRef` env, read by the kubelet, never by the runner: not granted.

The Role in the deployment's namespace is named after the Job and owned by the Job, so the garbage collector
removes it with the Job (a day after it finishes, `ttlSecondsAfterFinished`). A state namespace of its own
cannot hold objects owned by the Job (owner references never cross namespaces): there the Role is the
deployment's, names only its state and lock, and the operator deletes it when the deployment goes (released,
or its DELETED event when it has no finalizer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.owners import MANAGED_BY, MANAGED_BY_LABEL, adopt, owner_reference
from devops_operator.terraform.artifacts import chunk_names
from devops_operator.terraform.backends import lock_lease_name, state_secret_name
from devops_operator.terraform.request import RunRequest, result_name

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"
COORDINATION = "coordination.k8s.io"
READ = ("get",)
WRITE = ("get", "update", "patch")
CREATE = ("create",)
JOB_LABEL = f"{API_GROUP}/runner-job"
DEPLOYMENT_LABEL = f"{API_GROUP}/infradeployment"


@dataclass(frozen=True)
class RoleRequest:
    """The Role(s) one Job needs: rules in the deployment's namespace, and in a state namespace of its own."""

    namespace: str
    rules: list[dict[str, Any]]
    state_namespace: str | None = None  # set only when the state lives in another namespace
    state_rules: list[dict[str, Any]] | None = None


def _kubernetes_state(request: RunRequest) -> tuple[str, str] | None:
    """(namespace, secret_suffix) of the Kubernetes backend the request configures, or None (s3)."""
    config = ((request.backend_override.get("terraform") or {}).get("backend") or {}).get("kubernetes")
    if not config or not config.get("secret_suffix"):
        return None
    return str(config.get("namespace") or request.namespace), str(config["secret_suffix"])


class _Rules:
    """Rules gathered by (group, resource, verbs): one rule per combination, names sorted (deterministic)."""

    def __init__(self) -> None:
        self._named: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
        self._create: set[tuple[str, str]] = set()

    def named(self, group: str, resource: str, verbs: tuple[str, ...], *names: str | None) -> None:
        wanted = {n for n in names if n}
        if wanted:
            self._named.setdefault((group, resource, verbs), set()).update(wanted)

    def create(self, group: str, resource: str) -> None:
        self._create.add((group, resource))

    def rules(self) -> list[dict[str, Any]]:
        out = [{"apiGroups": [group], "resources": [resource], "verbs": list(verbs), "resourceNames": sorted(names)}
               for (group, resource, verbs), names in sorted(self._named.items())]
        out += [{"apiGroups": [group], "resources": [resource], "verbs": list(CREATE)}
                for group, resource in sorted(self._create)]
        return out


def _state(rules: _Rules, suffix: str) -> None:
    """Terraform's Kubernetes backend: reads and writes its state Secret, takes and releases its lock Lease."""
    rules.named("", "secrets", WRITE, state_secret_name(suffix))
    rules.named(COORDINATION, "leases", WRITE, lock_lease_name(suffix))
    rules.create("", "secrets")
    rules.create(COORDINATION, "leases")


def _source(rules: _Rules, source: Mapping[str, Any]) -> None:
    config_map = (source.get("configMapRef") or {}).get("name")
    rules.named("", "configmaps", READ, config_map)
    rules.named("", "secrets", READ, ((source.get("git") or {}).get("credentialsSecretRef") or {}).get("name"))


def runner_rules(request: RunRequest, job: str, *, artifact_chunks: int | None = None) -> RoleRequest:
    """The rules the Job `job` running `request` needs (pure). `artifact_chunks`: the approved plan's, for an apply.

    plan, drift, destroy (a destroy plan): read the source and variables (destroy: the snapshot instead),
    use the state and lock, create the plan artefact (its name holds the plan id, unknown before the plan:
    create only), write the result. apply: read the approved artefact by its names, write the outputs, the
    snapshot and the errored state besides.
    """
    rules = _Rules()
    rules.named("", "secrets", WRITE, result_name(job))
    rules.create("", "secrets")
    # A source too large for the snapshot is fetched again even from it: the source objects are always read.
    _source(rules, request.source)
    if not request.from_snapshot:
        for item in request.vars_from:
            rules.named("", "secrets" if item.get("kind") == "Secret" else "configmaps", READ, str(item["name"]))
    if request.from_snapshot:
        rules.named("", "secrets", READ, request.inputs_snapshot_secret)
    if request.step == "apply":
        if request.artifact_secret:
            rules.named("", "secrets", READ, *chunk_names(request.artifact_secret, max(artifact_chunks or 1, 1)))
        if not request.from_snapshot:  # applying a destroy plan keeps the snapshot it was made from
            rules.named("", "secrets", WRITE, request.inputs_snapshot_secret)
        rules.named("", "secrets", WRITE, f"{request.deployment}-errored-tfstate"[:253], request.outputs_secret)
        if request.outputs_config_map:
            rules.named("", "configmaps", WRITE, request.outputs_config_map)
            rules.create("", "configmaps")
    state = _kubernetes_state(request)
    if state is None or state[0] == request.namespace:
        if state is not None:
            _state(rules, state[1])
        return RoleRequest(namespace=request.namespace, rules=rules.rules())
    elsewhere = _Rules()
    _state(elsewhere, state[1])
    return RoleRequest(namespace=request.namespace, rules=rules.rules(), state_namespace=state[0],
                       state_rules=elsewhere.rules())


def role_name(job: str) -> str:
    """The Job's Role and RoleBinding in its namespace (a Job name is at most 52 characters)."""
    return f"{job}-runner"


def state_role_name(secret_suffix: str) -> str:
    """The deployment's Role and RoleBinding in a shared state namespace: the state suffix is unique there."""
    return f"devops-runner-{secret_suffix}"[:253]


def _labels(request: RunRequest, job: str | None) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY, DEPLOYMENT_LABEL: request.deployment}
    if job:
        labels[JOB_LABEL] = job
    return labels


def role(name: str, namespace: str, rules: list[dict[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": RBAC_VERSION, "kind": "Role",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "rules": rules}


def role_binding(name: str, namespace: str, subjects: list[tuple[str, str]],
                 labels: Mapping[str, str]) -> dict[str, Any]:
    """Binds the ServiceAccounts (namespace, name) to the Role of the same name."""
    return {"apiVersion": RBAC_VERSION, "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns} for ns, sa in sorted(set(subjects))]}


def job_objects(request: RunRequest, job: str, service_account: str,
                *, artifact_chunks: int | None = None) -> list[dict[str, Any]]:
    """The Role and RoleBinding of one Job in its namespace (the caller makes the Job their owner)."""
    wanted = runner_rules(request, job, artifact_chunks=artifact_chunks)
    labels = _labels(request, job)
    name = role_name(job)
    return [role(name, request.namespace, wanted.rules, labels),
            role_binding(name, request.namespace, [(request.namespace, service_account)], labels)]


def state_objects(request: RunRequest, service_accounts: list[str]) -> list[dict[str, Any]]:
    """The deployment's Role and RoleBinding in a shared state namespace (none when the state is not there)."""
    wanted = runner_rules(request, "-")
    if wanted.state_namespace is None or wanted.state_rules is None:
        return []
    labels = _labels(request, None) | {f"{API_GROUP}/infradeployment-namespace": request.namespace}
    name = state_role_name(str((_kubernetes_state(request) or ("", request.deployment))[1]))
    return [role(name, wanted.state_namespace, wanted.state_rules, labels),
            role_binding(name, wanted.state_namespace, [(request.namespace, sa) for sa in service_accounts], labels)]


def path(obj: Mapping[str, Any], *, named: bool = False) -> str:
    plural = "roles" if obj["kind"] == "Role" else "rolebindings"
    base = f"/apis/{RBAC_VERSION}/namespaces/{obj['metadata']['namespace']}/{plural}"
    return f"{base}/{obj['metadata']['name']}" if named else base


# -- I/O: creating, re-owning and deleting them --------------------------------------------------------


def _create_or_replace(api: ApiClient, obj: Mapping[str, Any], *, replace: bool) -> None:
    """Create `obj`; one already there is the same Job's (kept) or, with `replace`, rewritten."""
    try:
        call_json(api, "POST", path(obj), body=dict(obj), timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status != 409:
            raise
        if replace:
            call_json(api, "PUT", path(obj, named=True), body=dict(obj), timeout=REQUEST_TIMEOUT)


def create_for_job(api: ApiClient, objects: Sequence[Mapping[str, Any]], deployment: Mapping[str, Any]) -> None:
    """The Job's Role and RoleBinding, before the Job: owned by the deployment until the Job exists.

    Before, so the runner's first request never races its permissions; owned meanwhile, so an operator
    stopped between the two never leaves them without an owner (they go with the deployment then).
    """
    for obj in objects:
        _create_or_replace(api, adopt(obj, deployment), replace=False)


def hand_to_job(api: ApiClient, objects: Sequence[Mapping[str, Any]], job: Mapping[str, Any]) -> None:
    """Make the Job their only owner, so the garbage collector removes them with it."""
    # blockOwnerDeletion false: nothing waits on them, and setting it would need update on jobs/finalizers.
    patch = {"metadata": {"ownerReferences": [owner_reference(job, block_owner_deletion=False)]}}
    for obj in objects:
        call_json(api, "PATCH", path(obj, named=True), body=patch, timeout=REQUEST_TIMEOUT,
                  content_type="application/merge-patch+json")


def ensure_state_role(api: ApiClient, objects: Sequence[Mapping[str, Any]]) -> None:
    """The deployment's Role and RoleBinding in a shared state namespace, rewritten when they differ."""
    for obj in objects:
        _create_or_replace(api, obj, replace=True)


def delete_state_role(api: ApiClient, state_namespace: str, secret_suffix: str) -> None:
    """Remove the deployment's Role and RoleBinding from the shared state namespace (gone already: fine)."""
    name = state_role_name(secret_suffix)
    for plural in ("rolebindings", "roles"):
        try:
            call_json(api, "DELETE", f"/apis/{RBAC_VERSION}/namespaces/{state_namespace}/{plural}/{name}",
                      timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
