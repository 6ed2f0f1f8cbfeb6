"""Remediation controller: hands every change (and every wake-up) to `ops/remediation/service.advance`.

Thin on purpose: the service reads the object fresh, decides the next step from its status, records
its intent before any AWS call and writes status itself (so what it is about to do is stored before it
does it). This module only schedules when to look again (`Wakeups`: the verification delay, the next
check, an approval's expiry, a project that is not Ready yet) and lets kopf retry what failed unexpectedly.

It also registers a HealthCheck's remediation policy as a post-check hook of the HealthCheck controller:
after each check, `ops/remediation/policy.decide` says which Remediations to create (from the ones the
check created before), and this module creates them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator import metrics
from devops_operator.api.common import API_GROUP, API_VERSION, ResourceType
from devops_operator.api.healthcheck import KIND as HEALTHCHECK_KIND
from devops_operator.api.healthcheck import HealthCheckSpec, Verdict, parse_rfc3339
from devops_operator.api.remediation import KIND
from devops_operator.controllers import healthcheck
from devops_operator.controllers.status import retry_delay
from devops_operator.controllers.wakeups import Wakeups
from devops_operator.kube import client as kube_client
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.events import post_event
from devops_operator.kube.redaction import redact
from devops_operator.ops.health.service import CheckResult
from devops_operator.ops.remediation import policy, service
from devops_operator.runtime import Runtime

logger = logging.getLogger(__name__)


def step(runtime: Runtime, wakeups: Wakeups | None, namespace: str, name: str) -> None:
    with metrics.reconcile_timer(KIND.kind):
        wake = service.advance(runtime, namespace, name)
    if wakeups is None:
        return
    if wake is None:
        wakeups.cancel(KIND.kind, namespace, name)
    else:
        wakeups.schedule(KIND.kind, namespace, name, wake)


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
def reconcile_remediation(name: str, namespace: str | None, memo: kopf.Memo, retry: int, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    try:
        step(runtime, memo.get("wakeups"), namespace or "", name)
    except Exception as exc:  # the API server refused a read or write, or a bug: kopf backs off and retries
        config = runtime.config
        message = redact(f"{type(exc).__name__}: {exc}")
        raise kopf.TemporaryError(message, delay=retry_delay(retry, base=config.retry_base_seconds,
                                                             cap=config.retry_cap_seconds)) from None


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=lambda type, **_: type == "DELETED")
def forget_remediation(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    wakeups: Wakeups | None = memo.get("wakeups")
    if wakeups is not None:
        wakeups.cancel(KIND.kind, namespace or "", name)
    service.forget(namespace or "", name)
    metrics.forget_resource(KIND.kind, namespace or "", name)


# --- a HealthCheck's remediation policy -------------------------------------------------------------------


def _existing(api: Any, namespace: str, check: str) -> list[policy.Existing]:
    listing = CustomObjectsApi(api).list_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, KIND.plural, label_selector=f"{policy.HEALTH_CHECK_LABEL}={check[:63]}",
        _request_timeout=REQUEST_TIMEOUT)
    assert isinstance(listing, dict)
    found = []
    for item in listing.get("items") or []:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        created = meta.get("creationTimestamp")
        if labels.get(policy.HEALTH_CHECK_LABEL) != check[:63] or not isinstance(created, str):
            continue  # the selector is a request: the answer is checked too
        found.append(policy.Existing(meta.get("name", ""), labels.get(policy.TARGET_LABEL, ""),
                                     parse_rfc3339(created)))
    return found


def _candidates(obj: Mapping[str, Any], result: CheckResult) -> list[policy.Candidate]:
    previous = list((obj.get("status") or {}).get("resources") or [])
    found = []
    for checked in result.resources:
        target, verdict = checked.target, checked.verdict
        found.append(policy.Candidate(
            type=ResourceType(target.type), id=target.id, name=target.name, verdict=Verdict(verdict.verdict),
            consecutive=policy.consecutive(previous, target.name, verdict.verdict),
            reason=verdict.reasons[0] if verdict.reasons else "", cluster=target.cluster, region=target.region))
    return found


def apply_remediation_policy(obj: Mapping[str, Any], result: CheckResult, *, api: Any = None,
                             now: datetime | None = None) -> list[str]:
    """After a check: create the Remediations the policy decides on; returns their names."""
    try:
        spec = HealthCheckSpec.model_validate(dict(obj.get("spec") or {}))
    except ValidationError:
        return []  # the HealthCheck controller reports an invalid spec
    if spec.remediation_policy is None or not spec.remediation_policy.enabled:
        return []
    api = api or kube_client.api_client()
    now = now or datetime.now(UTC)
    metadata = obj.get("metadata") or {}
    namespace, check = str(metadata.get("namespace")), str(metadata.get("name"))
    decision = policy.decide(spec.remediation_policy, _candidates(obj, result), _existing(api, namespace, check), now)
    created = []
    for candidate in decision.create:
        manifest = policy.manifest(obj, spec, candidate, now)
        name = manifest["metadata"]["name"]
        try:
            CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, KIND.plural,
                                                                 manifest, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 409:
                continue  # decided and created already (another check of the same minute)
            raise
        created.append(name)
        post_event(api, {"apiVersion": HEALTHCHECK_KIND.api_version, "kind": HEALTHCHECK_KIND.kind,
                         "metadata": metadata}, "Warning", "RemediationCreated",
                   f"created Remediation {name}: {spec.remediation_policy.action} {candidate.type} {candidate.id} "
                   f"({candidate.verdict} for {candidate.consecutive} check(s))")
    for skipped in decision.skipped:
        logger.info("HealthCheck %s/%s: no Remediation for %s: %s", namespace, check, skipped.resource, skipped.why)
    return created


def remediation_policy_hook(obj: Mapping[str, Any], result: CheckResult) -> None:
    """The HealthCheck controller's post-check hook (registered once, at import)."""
    apply_remediation_policy(obj, result)


if remediation_policy_hook not in healthcheck.POST_CHECK_HOOKS:
    healthcheck.POST_CHECK_HOOKS.append(remediation_policy_hook)
