"""Drift detection: what a detect-only plan of the applied inputs says drifted, and when to check next (pure).

A drift check plans the same inputs as the last applied plan without keeping the plan (the runner's
`drift` step): whatever that plan would change is what changed behind Terraform's back. A resource it
would create was deleted outside Terraform; one it would update has the listed attributes changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devops_operator.api.common import bounded, max_items
from devops_operator.api.infradeployment import DriftedResource, DriftStatus


@dataclass(frozen=True)
class DriftFinding:
    count: int
    resources: list[dict[str, Any]]  # DriftedResource on the wire, bounded
    truncated: bool

    @property
    def detected(self) -> bool:
        return self.count > 0

    def describe(self) -> str:
        if not self.count:
            return "no drift: the infrastructure matches the last apply"
        parts = []
        for item in self.resources[:5]:
            if item["action"] == "create":
                parts.append(f"{item['address']} (deleted outside Terraform)")
            elif item.get("attributes"):
                parts.append(f"{item['address']} ({', '.join(item['attributes'])} changed)")
            else:
                parts.append(f"{item['address']} (would be {item['action']}d)")
        more = f" and {self.count - 5} more" if self.count > 5 else ""
        return f"{self.count} resource(s) drifted: {'; '.join(parts)}{more}"


def drift_from_result(changes: Sequence[Mapping[str, Any]], total: int | None = None) -> DriftFinding:
    """The drift a drift Job's result reports (its `changes`, `changesTotal`)."""
    shown, _ = bounded(DriftStatus, "resources", list(changes))
    attribute_limit = max_items(DriftedResource, "attributes")
    listed = []
    for change in shown:
        attributes = list(change.get("attributes") or [])
        listed.append(DriftedResource(
            address=str(change["address"]), action=change["action"], attributes=attributes[:attribute_limit],
            attributes_truncated=len(attributes) > attribute_limit).to_wire())
    count = max(int(total or 0), len(changes))
    return DriftFinding(count=count, resources=listed, truncated=count > len(listed))


def next_check(last_checked: datetime | None, last_applied: datetime | None, interval: timedelta) -> datetime | None:
    """When the next drift check is due: an interval after the last check, or after the last apply."""
    anchor = max((m for m in (last_checked, last_applied) if m is not None), default=None)
    return anchor + interval if anchor is not None else None
