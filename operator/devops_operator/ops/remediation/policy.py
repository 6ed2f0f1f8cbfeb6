"""A HealthCheck's remediation policy: which Remediations to create after a check (pure).

Counted from the Remediation objects the policy created before (labelled with the check), never from
the HealthCheck's status, so that deleting or editing status cannot reset a cooldown or the daily cap:

- a resource acts when its verdict is the policy's `onVerdict` or worse (NO_DATA and NOT_FOUND never act)
  for `consecutiveChecks` checks in a row;
- only resources the action applies to (the registry), and only those listed in `resources` when set;
- not within `cooldown` of the last Remediation of the same resource;
- at most `maxPerDay` in any 24 hours, worst resources first.

Each Remediation is owned by the HealthCheck (garbage-collected with it), labelled with it and with its
target, verified through it, and named deterministically from the check, the resource and the minute it
was detected, so two operators deciding the same thing create one object, not two. In a production
environment it waits for an approval like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devops_operator.api.actions import spec_of, target_problems
from devops_operator.api.common import GROUP_VERSION, ResourceType
from devops_operator.api.healthcheck import HealthCheckSpec, RemediationPolicy, Verdict
from devops_operator.digests import short_digest
from devops_operator.durations import parse_duration
from devops_operator.kube.conditions import rfc3339
from devops_operator.kube.owners import owner_reference

HEALTH_CHECK_LABEL = "devops.fractary.io/health-check"
TARGET_LABEL = "devops.fractary.io/remediation-target"
DAY = timedelta(hours=24)
ACTS_ON: dict[str, frozenset[Verdict]] = {
    Verdict.UNHEALTHY: frozenset({Verdict.UNHEALTHY}),
    Verdict.DEGRADED: frozenset({Verdict.UNHEALTHY, Verdict.DEGRADED}),
}
SEVERITY = {Verdict.UNHEALTHY: 0, Verdict.DEGRADED: 1}


@dataclass(frozen=True)
class Candidate:
    """A checked resource: what it is, its verdict now, and for how many checks in a row."""

    type: ResourceType
    id: str
    name: str
    verdict: Verdict
    consecutive: int
    reason: str = ""
    cluster: str | None = None
    region: str | None = None

    @property
    def key(self) -> str:
        """The target label value: one resource, whatever its display name."""
        return short_digest({"type": str(self.type), "id": self.id, "cluster": self.cluster,
                             "region": self.region})


@dataclass(frozen=True)
class Existing:
    """A Remediation the policy created before (from the objects labelled with the check)."""

    name: str
    target_key: str
    created_at: datetime


@dataclass(frozen=True)
class Skipped:
    resource: str
    why: str


@dataclass(frozen=True)
class Decision:
    create: list[Candidate]
    skipped: list[Skipped]


def consecutive(previous: Sequence[Mapping[str, Any]], name: str, verdict: Verdict | str) -> int:
    """Checks in a row with this verdict, counting this one (from the status as it was before the check)."""
    before = next((r for r in previous if r.get("name") == name), None)
    if before is None or before.get("verdict") != str(verdict):
        return 1
    return int(before.get("consecutive") or 1) + 1


def decide(policy: RemediationPolicy, candidates: Iterable[Candidate], existing: Iterable[Existing],
           now: datetime) -> Decision:
    if not policy.enabled:
        return Decision([], [])
    action = spec_of(policy.action)
    acting = ACTS_ON[str(policy.on_verdict)]
    cooldown = parse_duration(policy.cooldown)
    earlier = list(existing)
    budget = policy.max_per_day - sum(1 for e in earlier if e.created_at > now - DAY)
    latest: dict[str, datetime] = {}
    for item in earlier:
        latest[item.target_key] = max(latest.get(item.target_key, item.created_at), item.created_at)
    wanted = [c for c in candidates if c.verdict in acting and c.consecutive >= policy.consecutive_checks]
    wanted.sort(key=lambda c: (SEVERITY.get(c.verdict, 9), -c.consecutive, c.name))
    create: list[Candidate] = []
    skipped: list[Skipped] = []
    for candidate in wanted:
        if policy.resources and candidate.id not in policy.resources and candidate.name not in policy.resources:
            continue
        if action.target(candidate.type) is None:
            if policy.resources:
                skipped.append(Skipped(candidate.name, f"action {action.name} does not apply to {candidate.type}"))
            continue
        missing = target_problems(action.name, candidate.type, {"cluster": candidate.cluster})
        if missing:
            skipped.append(Skipped(candidate.name, "; ".join(missing)))
            continue
        last = latest.get(candidate.key)
        if last is not None and now - last < cooldown:
            skipped.append(Skipped(candidate.name, f"cooldown: the last Remediation of it was created "
                                                   f"{rfc3339(last)} (cooldown {policy.cooldown})"))
            continue
        if budget <= 0:
            skipped.append(Skipped(candidate.name,
                                   f"maxPerDay: {policy.max_per_day} Remediations in the last 24 hours"))
            continue
        create.append(candidate)
        budget -= 1
    return Decision(create, skipped)


def remediation_name(check: str, candidate: Candidate, action: str, now: datetime) -> str:
    minute = now.replace(second=0, microsecond=0)
    suffix = short_digest({"target": candidate.key, "at": rfc3339(minute)}, 10)
    return f"{check[:40].rstrip('-')}-{action}-{suffix}"


def manifest(healthcheck: Mapping[str, Any], spec: HealthCheckSpec, candidate: Candidate,
             now: datetime) -> dict[str, Any]:
    """The Remediation the policy creates for one resource (owned by and labelled with the HealthCheck)."""
    policy = spec.remediation_policy
    assert policy is not None
    metadata = healthcheck.get("metadata") or {}
    check = str(metadata.get("name"))
    target: dict[str, Any] = {"type": str(candidate.type), "id": candidate.id}
    if candidate.cluster:
        target["cluster"] = candidate.cluster
    if candidate.region:
        target["region"] = candidate.region
    reason = (f"HealthCheck {check} saw {candidate.verdict} for {candidate.consecutive} check(s) in a row"
              + (f": {candidate.reason}" if candidate.reason else ""))
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Remediation",
        "metadata": {
            "name": remediation_name(check, candidate, str(policy.action), now),
            "namespace": metadata.get("namespace"),
            "labels": {HEALTH_CHECK_LABEL: check[:63], TARGET_LABEL: candidate.key},
            "ownerReferences": [owner_reference(healthcheck, controller=False)],
        },
        "spec": {
            "projectRef": spec.project_ref.to_wire(),
            "environment": spec.environment,
            "target": target,
            "action": str(policy.action),
            "parameters": policy.parameters.to_wire(),
            "reason": reason[:1024],
            "dryRun": policy.dry_run,
            "verification": {"healthCheckRef": {"name": check}, "rollbackOnFailure": policy.rollback_on_failure},
            "source": {"healthCheck": check, "verdict": str(candidate.verdict), "detectedAt": rfc3339(now)},
        },
    }
