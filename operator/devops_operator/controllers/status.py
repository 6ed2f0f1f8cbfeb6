"""The one way controllers write status: conditions, phase, observedGeneration, Events, metrics.

A controller decides an `Outcome` (pure data); `status_update` turns it into the new status with
kstatus semantics and decides the Event, posted only when the Ready condition actually transitions so
a resync does not flood `kubectl describe`. `write_outcome` delivers it through kopf's patch inside a
handler, `apply_outcome` through the API for work outside kopf's handlers (background rechecks).
Messages are redacted and bounded (MAX_STATUS_MESSAGE): kopf copies a failed handler's message into an
annotation too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator import metrics
from devops_operator.api.common import API_GROUP, API_VERSION, MAX_STATUS_MESSAGE, KindInfo
from devops_operator.kube import conditions
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.events import post_event, truncate
from devops_operator.kube.redaction import redact


@dataclass(frozen=True)
class Outcome:
    """What one reconciliation concluded, before it becomes status."""

    state: str  # "ready", "stalled" or "reconciling"
    reason: str
    message: str
    phase: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    # (type, status "True"/"False"/"Unknown", reason, message): Unknown when not checked this time.
    domain_conditions: tuple[tuple[str, str, str, str], ...] = ()

    @classmethod
    def ready(cls, reason: str, message: str, fields: Mapping[str, Any] | None = None,
              conditions: tuple[tuple[str, str, str, str], ...] = ()) -> Outcome:
        return cls("ready", reason, message, "Ready", fields or {}, conditions)

    @classmethod
    def stalled(cls, reason: str, message: str, fields: Mapping[str, Any] | None = None,
                conditions: tuple[tuple[str, str, str, str], ...] = ()) -> Outcome:
        return cls("stalled", reason, message, "Stalled", fields or {}, conditions)

    @classmethod
    def reconciling(cls, reason: str, message: str, phase: str, fields: Mapping[str, Any] | None = None,
                    conditions: tuple[tuple[str, str, str, str], ...] = ()) -> Outcome:
        return cls("reconciling", reason, message, phase, fields or {}, conditions)


def build_status(current: Mapping[str, Any], generation: int | None, outcome: Outcome) -> dict[str, Any]:
    """The new status: previous conditions carried forward, changed only where the outcome says."""
    existing = [dict(c) for c in current.get("conditions") or []]
    # Redact before truncating: a cut could split a secret so the pattern no longer matches it.
    message = truncate(redact(outcome.message), MAX_STATUS_MESSAGE)
    if outcome.state == "ready":
        updated = conditions.mark_ready(existing, outcome.reason, message, generation)
    elif outcome.state == "stalled":
        updated = conditions.mark_stalled(existing, outcome.reason, message, generation)
    else:
        updated = conditions.mark_reconciling(existing, outcome.reason, message, generation)
    for ctype, value, reason, text in outcome.domain_conditions:
        updated = conditions.set_condition(
            updated, ctype, value, reason, truncate(redact(text), MAX_STATUS_MESSAGE), generation
        )
    return {
        **dict(outcome.fields),
        "observedGeneration": generation,
        "phase": outcome.phase,
        "message": message,
        "conditions": updated,
        "lastReconciled": conditions.rfc3339(),
    }


@dataclass(frozen=True)
class StatusUpdate:
    """The status to write for an outcome, and the Event to post when Ready transitions."""

    status: dict[str, Any]
    event: tuple[str, str, str] | None  # (type, reason, message)


def status_update(kind: str, obj: Mapping[str, Any], outcome: Outcome) -> StatusUpdate:
    """Decide the new status and Event of an object (given as a plain dict or a kopf Body); update gauges."""
    metadata = obj.get("metadata") or {}
    current = dict(obj.get("status") or {})
    status = build_status(current, metadata.get("generation"), outcome)
    before = conditions.get_condition(current.get("conditions") or [], "Ready") or {}
    after = conditions.get_condition(status["conditions"], "Ready") or {}
    event = None
    if (before.get("status"), before.get("reason")) != (after.get("status"), after.get("reason")):
        event = ("Warning" if outcome.state == "stalled" else "Normal", outcome.reason, status["message"])
    metrics.record_readiness(
        kind,
        metadata.get("namespace") or "",
        metadata.get("name") or "",
        ready=outcome.state == "ready",
        stalled=outcome.state == "stalled",
    )
    return StatusUpdate(status=status, event=event)


def write_outcome(
    kind: str,
    body: kopf.Body,
    patch: kopf.Patch,
    outcome: Outcome,
) -> dict[str, Any]:
    """Inside a kopf handler: put the outcome into `patch.status` and post the Event through kopf."""
    update = status_update(kind, body, outcome)
    for key, value in update.status.items():
        patch.status[key] = value
    if update.event is not None:
        event_type, reason, message = update.event
        kopf.event(body, type=event_type, reason=reason, message=message)
    return update.status


def changes_status(current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing `new` (a merge patch of status) changes anything but `lastReconciled` (pure)."""
    return any(current.get(key) != value for key, value in new.items() if key != "lastReconciled")


def apply_outcome(api: ApiClient, info: KindInfo, obj: Mapping[str, Any], outcome: Outcome, *,
                  resource_version: str | None = None, only_if_changed: bool = False,
                  warning_reasons: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Outside kopf's handlers (background rechecks): the same status and Event, written directly.

    The Event of a transition to a reason in `warning_reasons` is a Warning (something went wrong on the way,
    though the object is not stalled: e.g. a stale plan made again).

    With `resource_version`, the write is refused (409) if the object changed since it was read at that
    version: a controller recording what it is about to do learns that someone else got there first.
    With `only_if_changed` (an object looked at again while it waits), nothing is written when the status
    would say what it says already: no churn for watches and GitOps tools; the gauges are still set.
    """
    update = status_update(info.kind, obj, outcome)
    if only_if_changed and update.event is None and not changes_status(obj.get("status") or {}, update.status):
        return update.status
    metadata = obj.get("metadata") or {}
    body: dict[str, Any] = {"status": update.status}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    CustomObjectsApi(api).patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, str(metadata.get("namespace")), info.plural, str(metadata.get("name")),
        body, _request_timeout=REQUEST_TIMEOUT,
    )
    if update.event is not None:
        event_type, reason, message = update.event
        post_event(api, {"apiVersion": info.api_version, "kind": info.kind, "metadata": metadata},
                   "Warning" if event_type == "Warning" or reason in warning_reasons else "Normal", reason, message)
    return update.status


def retry_delay(
    retry: int, *, base: float, cap: float, jitter: Callable[[float, float], float] = random.uniform
) -> float:
    """Seconds before retry number `retry` (kopf's count, 0 first): base * 2^retry, capped, jittered.

    The jitter takes each delay from the upper half of its step ("equal jitter"), so many objects
    failing together (the API server or AWS restarting) spread out instead of retrying in lockstep,
    and a delay never shrinks below half its step.
    """
    step = min(cap, base * (2 ** min(max(retry, 0), 32)))
    return jitter(step / 2, step)
