"""The timeline: error patterns, metric anomalies, deployments and remediations in one ordered list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from devops_operator.kube.conditions import rfc3339
from devops_operator.ops.investigation.anomalies import Anomaly
from devops_operator.ops.investigation.causes import Change
from devops_operator.ops.investigation.patterns import Pattern

MAX_TIMELINE_ENTRIES = 500
# Patterns beyond the most frequent ones add noise, not order: the report lists them all anyway.
PATTERNS_ON_TIMELINE = 20


class EntryKind(StrEnum):
    LOG_PATTERN = "log-pattern"
    METRIC_ANOMALY = "metric-anomaly"
    DEPLOYMENT = "deployment"
    REMEDIATION = "remediation"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: EntryKind
    summary: str
    end: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"at": rfc3339(self.at), "kind": self.kind.value, "summary": self.summary}
        if self.end is not None:
            entry["end"] = rfc3339(self.end)
        return entry


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    truncated: bool

    def count(self, kind: EntryKind) -> int:
        return sum(1 for entry in self.entries if entry.kind == kind)


def _when(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def build(patterns: Sequence[Pattern], anomalies: Sequence[Anomaly], changes: Sequence[Change]) -> Timeline:
    entries = [
        TimelineEntry(_when(p.first_seen), EntryKind.LOG_PATTERN,
                      f"first \"{p.signature}\" ({p.count} events until {rfc3339(_when(p.last_seen))})",
                      _when(p.last_seen))
        for p in patterns[:PATTERNS_ON_TIMELINE]
    ]
    entries += [TimelineEntry(a.start, EntryKind.METRIC_ANOMALY, a.describe(), a.end) for a in anomalies]
    entries += [
        TimelineEntry(c.at, EntryKind.DEPLOYMENT if c.kind == "deployment" else EntryKind.REMEDIATION,
                      f"{c.kind} {c.name}" + (f": {c.detail}" if c.detail else ""))
        for c in changes
    ]
    entries.sort(key=lambda e: (e.at, e.kind.value, e.summary))
    return Timeline(entries[:MAX_TIMELINE_ENTRIES], len(entries) > MAX_TIMELINE_ENTRIES)
