"""The target's health after an action, read through the one health evaluator.

Verification never judges metrics itself: it asks `ops.health.service.check_resources` (the HealthCheck
controller's evaluator) for the target's verdict over the whole minutes since the action. The settings
are the referenced HealthCheck's (`verification.healthCheckRef`: its metric overrides, the target's own
overrides, its missing-data policy) or the evaluator's built-in defaults for the resource type.

CloudWatch aligns datapoints to minutes and so does the evaluator, so the window starts at the first
whole minute after the action (no datapoint from before it counts) and the first check can be made
once one whole minute has passed (`first_check_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator.api.common import API_GROUP, API_VERSION, ResourceType
from devops_operator.api.healthcheck import KIND as HEALTHCHECK_KIND
from devops_operator.api.healthcheck import EvaluationWindow, HealthCheckSpec, TimeAnchor, Verdict
from devops_operator.api.remediation import RemediationSpec
from devops_operator.durations import format_duration
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import rfc3339
from devops_operator.ops.health.service import CheckSettings, CheckSpecError, check_resources
from devops_operator.ops.health.targets import Target
from devops_operator.projectrefs import ProjectAccess
from devops_operator.runtime import Runtime

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class HealthReading:
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    source: str = "built-in check"


def window_start(acted_at: datetime) -> datetime:
    """The first whole minute after the action."""
    floor = acted_at.astimezone(UTC).replace(second=0, microsecond=0)
    return floor if floor == acted_at else floor + MINUTE


def first_check_at(acted_at: datetime, delay: timedelta) -> datetime:
    """verification.delay after the action, and not before one whole minute after it has passed."""
    return max(acted_at + delay, window_start(acted_at) + MINUTE)


def _health_check(runtime: Runtime, namespace: str, name: str) -> HealthCheckSpec | str:
    try:
        found = CustomObjectsApi(runtime.kube).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, HEALTHCHECK_KIND.plural, name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return f"spec.verification.healthCheckRef: HealthCheck {namespace}/{name} does not exist"
        raise
    assert isinstance(found, dict)
    try:
        return HealthCheckSpec.model_validate(found.get("spec") or {})
    except ValidationError:
        return f"spec.verification.healthCheckRef: HealthCheck {namespace}/{name} has an invalid spec"


def _target(spec: RemediationSpec, check: HealthCheckSpec | None) -> Target:
    remediated = spec.target
    own = next((r for r in check.targets.resources if r.id == remediated.id and str(r.type) == str(remediated.type)),
               None) if check is not None else None
    return Target(type=ResourceType(remediated.type), id=remediated.id, name=own.display_name if own else remediated.id,
                  region=remediated.region, cluster=remediated.cluster, metrics=tuple(own.metrics) if own else (),
                  field="spec.target")


def read_target_health(runtime: Runtime, access: ProjectAccess, namespace: str, spec: RemediationSpec,
                       since: datetime, until: datetime) -> HealthReading:
    """The verdict of the Remediation's target over the whole minutes between `since` and `until`."""
    check: HealthCheckSpec | None = None
    source = "built-in check"
    ref = spec.verification.health_check_ref
    if ref is not None:
        found = _health_check(runtime, namespace, ref.name)
        if isinstance(found, str):
            return HealthReading(Verdict.NO_DATA, [found], f"HealthCheck {ref.name}")
        check, source = found, f"HealthCheck {ref.name}"
    start = window_start(since)
    window = EvaluationWindow(anchor=TimeAnchor(at=rfc3339(start), before="0s",
                                                after=format_duration(max(until - start, MINUTE))))
    base = CheckSettings.from_spec(check) if check is not None else CheckSettings()
    settings = CheckSettings(window=window, missing_data=base.missing_data, metrics=base.metrics,
                             compare_previous=False)
    try:
        result = check_resources(runtime, access, [_target(spec, check)], settings, now=until)
    except CheckSpecError as exc:
        return HealthReading(Verdict.NO_DATA, [str(exc)], source)
    resource = result.resources[0]
    return HealthReading(Verdict(resource.verdict.verdict), list(resource.verdict.reasons), source)
