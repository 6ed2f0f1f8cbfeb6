"""The one place a `spec.projectRef` is resolved, for every kind that names a DevOpsProject.

A reference is honoured only when the project exists, grants the referring namespace (its own namespace
always; another only through the project's `allowedNamespaces` or `allowedNamespaceSelector`), is Ready
in this operator (valid, within the tenancy policy, identities verified), and defines the environment
asked for. Anything else raises `ProjectRefError` with a reason and a message naming the field and the
fix; controllers turn it into their status, and no AWS call is made for the referring object:

- `stalled`: the referrer cannot progress as it is (a refusal by policy, an unknown environment): Stalled,
  so kstatus and Argo CD show it as failed, not as progressing forever;
- `waiting`: something outside the referrer may fix it later (the project created or made Ready, a grant
  added): the controller looks again (every stalled recheck), Stalled or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION, ProjectReference
from devops_operator.api.devopsproject import KIND as PROJECT_KIND
from devops_operator.api.devopsproject import DevOpsProjectSpec, EnvironmentPolicy
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import get_condition
from devops_operator.runtime import Runtime
from devops_operator.tenancy import reference_grant

PROJECT_NOT_FOUND = "ProjectNotFound"
POLICY_DENIED = "PolicyDenied"
PROJECT_NOT_READY = "ProjectNotReady"
ENVIRONMENT_NOT_FOUND = "EnvironmentNotFound"


class ProjectRefError(Exception):
    """Why a projectRef cannot be used. `waiting`: something outside the referrer may fix it later."""

    def __init__(self, reason: str, field: str, message: str, *, waiting: bool) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = reason
        self.field = field
        self.waiting = waiting

    @property
    def stalled(self) -> bool:
        """Whether the referrer is Stalled (a policy refusal is, though a grant added later clears it)."""
        return self.reason == POLICY_DENIED or not self.waiting


@dataclass(frozen=True)
class ProjectAccess:
    """A usable project and environment, for a referrer that passed every check."""

    key: str  # "namespace/name", the session factory's project key
    namespace: str
    name: str
    spec: DevOpsProjectSpec
    environment: EnvironmentPolicy

    @property
    def production(self) -> bool:
        return self.environment.production


def resolve_project(
    runtime: Runtime,
    referrer_namespace: str,
    ref: ProjectReference | Mapping[str, Any],
    environment: str,
    *,
    ref_field: str = "spec.projectRef",
    environment_field: str = "spec.environment",
) -> ProjectAccess:
    """The project and environment a referring object may use, or ProjectRefError."""
    reference = ref if isinstance(ref, ProjectReference) else ProjectReference.model_validate(dict(ref))
    namespace = reference.namespace or referrer_namespace
    key = f"{namespace}/{reference.name}"
    spec = runtime.admitted_spec(key)
    if spec is None:
        _refuse_unadmitted(runtime, namespace, reference.name, referrer_namespace, ref_field)
        raise AssertionError("unreachable")  # _refuse_unadmitted always raises
    _check_grant(runtime, namespace, reference.name, spec, referrer_namespace, ref_field)
    if not runtime.is_verified(key):
        raise ProjectRefError(
            PROJECT_NOT_READY, ref_field,
            f"DevOpsProject {key} is not Ready yet (its spec, tenancy policy or credentials are being checked, "
            f"or failed: kubectl -n {namespace} describe devopsproject {reference.name})",
            waiting=True,
        )
    for env in spec.environments:
        if env.name == environment:
            return ProjectAccess(key=key, namespace=namespace, name=reference.name, spec=spec, environment=env)
    known = ", ".join(env.name for env in spec.environments) or "none"
    raise ProjectRefError(
        ENVIRONMENT_NOT_FOUND, environment_field,
        f"{environment!r} is not an environment of DevOpsProject {key} (defined: {known}): fix "
        f"{environment_field}, or add the environment to the project",
        waiting=False,
    )


def _check_grant(runtime: Runtime, namespace: str, name: str, spec: DevOpsProjectSpec,
                 referrer_namespace: str, ref_field: str) -> None:
    labels = runtime.namespace_labels(referrer_namespace) if spec.allowed_namespace_selector else {}
    grant = reference_grant(namespace, name, spec, referrer_namespace, labels)
    if not grant.allowed:
        raise ProjectRefError(POLICY_DENIED, f"{ref_field}.namespace", grant.message, waiting=True)


def _refuse_unadmitted(runtime: Runtime, namespace: str, name: str, referrer_namespace: str,
                       ref_field: str) -> None:
    """A project this operator has not admitted: say whether it is missing or just not Ready.

    The grant is checked first, so a namespace without one learns nothing of the project's state.
    """
    key = f"{namespace}/{name}"
    try:
        obj = CustomObjectsApi(runtime.kube).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PROJECT_KIND.plural, name, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
        raise ProjectRefError(
            PROJECT_NOT_FOUND, ref_field,
            f"DevOpsProject {key} does not exist: create it, or fix {ref_field}.name and .namespace",
            waiting=True,
        ) from None
    assert isinstance(obj, dict)
    try:
        spec = DevOpsProjectSpec.model_validate(obj.get("spec") or {})
    except ValueError:
        spec = DevOpsProjectSpec()  # an unparsable project grants nothing
    _check_grant(runtime, namespace, name, spec, referrer_namespace, ref_field)
    ready = get_condition((obj.get("status") or {}).get("conditions"), "Ready") or {}
    why = f" ({ready.get('reason')}: {ready.get('message')})" if ready.get("reason") else ""
    raise ProjectRefError(
        PROJECT_NOT_READY, ref_field, f"DevOpsProject {key} is not Ready{why}", waiting=True
    )
