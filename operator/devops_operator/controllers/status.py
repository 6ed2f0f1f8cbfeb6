"""The one way controllers write status: conditions, phase, observedGeneration, Events, metrics.

A controller decides an `Outcome` (pure data); `write_outcome` turns it into the status patch
with kstatus semantics and posts an Event only when the Ready condition actually transitions,
so a resync does not flood `kubectl describe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from devops_operator import metrics
from devops_operator.kube import conditions
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
    message = redact(outcome.message)
    if outcome.state == "ready":
        updated = conditions.mark_ready(existing, outcome.reason, message, generation)
    elif outcome.state == "stalled":
        updated = conditions.mark_stalled(existing, outcome.reason, message, generation)
    else:
        updated = conditions.mark_reconciling(existing, outcome.reason, message, generation)
    for ctype, value, reason, text in outcome.domain_conditions:
        updated = conditions.set_condition(updated, ctype, value, reason, redact(text), generation)
    return {
        **dict(outcome.fields),
        "observedGeneration": generation,
        "phase": outcome.phase,
        "message": message,
        "conditions": updated,
        "lastReconciled": conditions.rfc3339(),
    }


def write_outcome(
    kind: str,
    body: kopf.Body,
    patch: kopf.Patch,
    outcome: Outcome,
) -> dict[str, Any]:
    """Put the outcome into `patch.status`, post an Event on a Ready transition, update gauges."""
    current = dict(body.get("status") or {})
    generation = body.metadata.get("generation")
    status = build_status(current, generation, outcome)
    for key, value in status.items():
        patch.status[key] = value

    before = conditions.get_condition(current.get("conditions") or [], "Ready") or {}
    after = conditions.get_condition(status["conditions"], "Ready") or {}
    if (before.get("status"), before.get("reason")) != (after.get("status"), after.get("reason")):
        event_type = "Warning" if outcome.state == "stalled" else "Normal"
        kopf.event(body, type=event_type, reason=outcome.reason, message=status["message"])

    meta = body.metadata
    metrics.record_readiness(
        kind,
        meta.namespace or "",
        meta.name or "",
        ready=outcome.state == "ready",
        stalled=outcome.state == "stalled",
    )
    return status
