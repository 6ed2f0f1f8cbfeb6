"""Clustering log events into error patterns: one pass, one dictionary entry per distinct signature.

Time and memory are linear in the number of events (each is masked once and counted in a dict); the
number of distinct signatures kept is bounded (`max_signatures`): events whose signature arrives after
the bound is reached are counted together, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from devops_operator.ops.investigation.masking import mask

MAX_EXAMPLE_CHARS = 500
DEFAULT_MAX_SIGNATURES = 10_000


@dataclass(frozen=True)
class LogEvent:
    """One log event as CloudWatch Logs returns it (timestamp in epoch milliseconds)."""

    timestamp: int
    message: str
    log_group: str
    log_stream: str = ""


@dataclass
class Pattern:
    """Events that share a signature: how many, when first and last, and one of them verbatim."""

    signature: str
    count: int
    first_seen: int
    last_seen: int
    example: str
    log_group: str


@dataclass
class Clustering:
    patterns: list[Pattern] = field(default_factory=list)  # most frequent first
    events: int = 0
    # Events whose signature was new after `max_signatures` distinct ones: counted, not clustered.
    unclustered: int = 0

    @property
    def distinct(self) -> int:
        return len(self.patterns)


def example_text(message: str) -> str:
    text = message.strip()
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[: MAX_EXAMPLE_CHARS - 1] + "…"


def cluster(events: Iterable[LogEvent], *, max_signatures: int = DEFAULT_MAX_SIGNATURES) -> Clustering:
    """Group events by signature; patterns ordered by count (then first seen, then signature)."""
    found: dict[str, Pattern] = {}
    result = Clustering()
    for event in events:
        result.events += 1
        signature = mask(event.message)
        pattern = found.get(signature)
        if pattern is None:
            if len(found) >= max_signatures:
                result.unclustered += 1
                continue
            found[signature] = Pattern(signature, 1, event.timestamp, event.timestamp,
                                       example_text(event.message), event.log_group)
            continue
        pattern.count += 1
        if event.timestamp < pattern.first_seen:
            pattern.first_seen = event.timestamp
        if event.timestamp > pattern.last_seen:
            pattern.last_seen = event.timestamp
    result.patterns = sorted(found.values(), key=lambda p: (-p.count, p.first_seen, p.signature))
    return result
