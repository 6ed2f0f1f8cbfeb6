"""Whether the approval admission policies (config/admission/) are installed, as the operator can tell.

Approving is a separate RBAC right, and the recorded approver the authenticated user, only where the
ValidatingAdmissionPolicies and their bindings exist: without them anyone who may edit an object may
approve it under any name. The operator cannot see admission happen, but it can read the policy and
binding objects (admissionregistration.k8s.io/v1) by the names the shipped files use, and says what it
found on every object that waits for a human (`ApprovalPolicyEnforced`) and in a metric.

- `enforcement` decides from plain data (what was found under each name) what to say: pure.
- `ApprovalPolicies` reads the objects (two LISTs, one per kind of object), keeps the answer for
  `DEVOPS_OPERATOR_APPROVAL_POLICY_RECHECK_SECONDS`, and tells its listeners when the answer changes
  (the controllers then look again at what waits for a human). 404 (the API group is not served) means
  not installed; 401/403 means unknown (the operator may not read them); any other failure keeps the
  last answer, or unknown when there is none, and is tried again at the next recheck.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import urllib3.exceptions
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator import approvals, metrics
from devops_operator.approvals import DISTINCT_APPROVER_LABEL, SPEC_CHANGED_BY_ANNOTATION
from devops_operator.config import OperatorConfig
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json

logger = logging.getLogger(__name__)

API = "/apis/admissionregistration.k8s.io/v1"
CONDITION = "ApprovalPolicyEnforced"
INSTALL_HINT = "kubectl apply -f config/admission/ (or install the Helm chart with its admission policies)"

# The names the shipped files (config/admission/*.yaml) give their policies and bindings; a test keeps
# them equal. Each binding has the name of its policy.
KIND_POLICIES = {
    "InfraDeployment": "devops-operator-infradeployment-approvals",
    "Remediation": "devops-operator-remediation-approvals",
    "PermissionRequest": "devops-operator-permissionrequest-approvals",
}
PROJECT_POLICY = "devops-operator-project-approvals"
SPEC_CHANGED_BY_POLICY = "devops-operator-spec-changed-by"
DISTINCT_APPROVER_POLICY = "devops-operator-distinct-approver"
ALL_POLICIES = (*KIND_POLICIES.values(), PROJECT_POLICY, SPEC_CHANGED_BY_POLICY, DISTINCT_APPROVER_POLICY)



class Presence(StrEnum):
    INSTALLED = "Installed"
    MISSING = "Missing"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Found:
    """What one policy name looks like in the cluster."""

    presence: Presence
    detail: str = ""  # why it is missing or unknown


@dataclass(frozen=True)
class Enforcement:
    """The `ApprovalPolicyEnforced` condition: status True, False or Unknown, a reason, a message."""

    status: str
    reason: str
    message: str

    @property
    def enforced(self) -> bool:
        return self.status == "True"

    def condition(self) -> tuple[str, str, str, str]:
        return (CONDITION, self.status, self.reason, self.message)


def required_policies(kind: str, distinct_approver: bool = False) -> tuple[str, ...]:
    """The policies an approval of `kind` relies on: its own, the project's (editing a project's approval
    settings is approving) and, under the two-person rule, the two that record and check the author."""
    names = [KIND_POLICIES[kind], PROJECT_POLICY]
    if distinct_approver:
        names += [SPEC_CHANGED_BY_POLICY, DISTINCT_APPROVER_POLICY]
    return tuple(names)


def found_in(policies: Iterable[Mapping[str, Any]] | None, bindings: Iterable[Mapping[str, Any]] | None,
             unknown: str = "") -> dict[str, Found]:
    """What each shipped name looks like, from the listed objects (None: that list could not be read)."""
    if policies is None or bindings is None:
        return {name: Found(Presence.UNKNOWN, unknown) for name in ALL_POLICIES}
    policy_names = {str((p.get("metadata") or {}).get("name")) for p in policies}
    bound: dict[str, list[Mapping[str, Any]]] = {}
    for binding in bindings:
        spec = binding.get("spec") or {}
        bound.setdefault(str(spec.get("policyName")), []).append(binding)
    found = {}
    for name in ALL_POLICIES:
        denying = [b for b in bound.get(name, []) if "Deny" in ((b.get("spec") or {}).get("validationActions") or [])]
        if name not in policy_names:
            found[name] = Found(Presence.MISSING, f"no ValidatingAdmissionPolicy {name}")
        elif not denying:
            why = ("bound without validationActions Deny (it only warns or audits)" if bound.get(name) else
                   "no ValidatingAdmissionPolicyBinding names it")
            found[name] = Found(Presence.MISSING, f"ValidatingAdmissionPolicy {name} is {why}")
        else:
            found[name] = Found(Presence.INSTALLED)
    return found


def enforcement(needed: Iterable[str], found: Mapping[str, Found]) -> Enforcement:
    """The condition for an object whose approval relies on the `needed` policies."""
    names = list(needed)
    missing = [found[n].detail for n in names if found[n].presence == Presence.MISSING]
    unknown = [n for n in names if found[n].presence == Presence.UNKNOWN]
    if missing:
        return Enforcement("False", "PoliciesMissing", (
            f"the approval admission policies are not installed ({'; '.join(missing)}): anyone who may edit this "
            f"object may approve it, under any name; install them: {INSTALL_HINT}"))
    if unknown:
        detail = next((found[n].detail for n in unknown if found[n].detail), "")
        return Enforcement("Unknown", "PoliciesUnreadable", (
            f"the operator cannot tell whether the approval admission policies ({', '.join(unknown)}) are "
            f"installed{f' ({detail})' if detail else ''}: grant its ServiceAccount list on "
            "validatingadmissionpolicies and validatingadmissionpolicybindings (admissionregistration.k8s.io)"))
    return Enforcement("True", "PoliciesInstalled", (
        f"approving needs the approve verb and records the requesting user: {', '.join(names)} are installed "
        "and bound with Deny"))


Listener = Callable[[], None]


class ApprovalPolicies:
    """The cluster's approval policies as last read; re-read when older than `max_age` seconds."""

    def __init__(self, api: ApiClient, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._found: dict[str, Found] | None = None
        self._read_at: float | None = None
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def found(self) -> dict[str, Found]:
        """The current answer: the cached one while fresh, else read now."""
        with self._lock:
            fresh = self._read_at is not None and self.clock() - self._read_at < self.max_age
            if fresh and self._found is not None:
                return self._found
        return self.refresh()

    def enforcement(self, kind: str, distinct_approver: bool = False) -> Enforcement:
        return enforcement(required_policies(kind, distinct_approver), self.found())

    def refresh(self) -> dict[str, Found]:
        """Read the policies and bindings now; listeners hear of a changed answer."""
        policies, why = self._list("validatingadmissionpolicies")
        bindings: list[Mapping[str, Any]] | None = None
        if not why:
            bindings, why = self._list("validatingadmissionpolicybindings")
        if why:
            policies = bindings = None
        with self._lock:
            previous = self._found
            if why.startswith("transient") and previous is not None:
                found = previous  # an API hiccup: keep the last answer until the next recheck
            else:
                found = found_in(policies, bindings, why)
            self._found, self._read_at = found, self.clock()
        for name, seen in found.items():
            metrics.APPROVAL_POLICY_INSTALLED.labels(name).set(
                {Presence.INSTALLED: 1, Presence.MISSING: 0, Presence.UNKNOWN: -1}[seen.presence])
        if previous is not None and previous != found:
            logger.info("approval admission policies changed: %s",
                        ", ".join(f"{name} {seen.presence}" for name, seen in sorted(found.items())))
            for listener in list(self._listeners):
                listener()
        return found

    def _list(self, plural: str) -> tuple[list[Mapping[str, Any]] | None, str]:
        """(the items, "") or (None, why not)."""
        try:
            listing = call_json(self.api, "GET", f"{API}/{plural}", timeout=REQUEST_TIMEOUT) or {}
        except ApiException as exc:
            if exc.status == 404:
                return [], ""  # the API group is not served (Kubernetes < 1.30): nothing is installed
            if exc.status in (401, 403):
                return None, f"the operator may not list {plural}: {exc.status} {exc.reason}"
            return None, f"transient: listing {plural} answered {exc.status} {exc.reason}"
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            return None, f"transient: listing {plural} failed: {type(exc).__name__}"
        return list(listing.get("items") or []), ""


def safeguards(policies: ApprovalPolicies, config: OperatorConfig, kind: str, obj: Mapping[str, Any], *,
               decision: approvals.ApprovalDecision, distinct_in_project: bool,
               namespace_labels: Callable[[str], Mapping[str, str]] | None = None,
               ) -> tuple[approvals.Safeguards, Enforcement]:
    """What `approvals.safeguard` needs for an object that waits for a human, and its ApprovalPolicyEnforced
    condition. The Namespace is read (for the two-person label) only when a manual approval is to be judged."""
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    where = "requireDistinctApprover in the project's environment" if distinct_in_project else ""
    if not where and namespace_labels is not None and decision.state == approvals.ApprovalState.APPROVED:
        try:
            labelled = namespace_labels(namespace).get(DISTINCT_APPROVER_LABEL) == "true"
        except ApiException as exc:
            if exc.status not in (401, 403):
                raise
            labelled = False  # the operator may not read Namespaces: the bound admission policy still decides
        where = f"namespace {namespace} is labelled {DISTINCT_APPROVER_LABEL}=true" if labelled else ""
    found = policies.enforcement(kind, distinct_approver=bool(where))
    guards = approvals.Safeguards(
        policy_required=config.requires_approval_policy(namespace), policy_enforced=found.enforced,
        policy_message=found.message, distinct_approver=bool(where), distinct_where=where,
        spec_changed_by=(metadata.get("annotations") or {}).get(SPEC_CHANGED_BY_ANNOTATION) or None)
    return guards, found
