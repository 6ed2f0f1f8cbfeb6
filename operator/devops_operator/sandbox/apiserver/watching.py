"""Watch events: a bounded per-resource history replayable from any recent resourceVersion.

kmock's bus only streams what happens after a consumer subscribes, so a client that lists and then
watches "from the list's resourceVersion" would lose events written in between. Here every write
is recorded with its resourceVersion, and a watch replays the history newer than its starting
point before waiting for more: nothing is lost between a list and the watch that follows it.

Writes are synchronous (no ``await``) on the event loop, so recording needs no lock.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

from devops_operator.sandbox.apiserver import errors

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


@dataclasses.dataclass(frozen=True)
class Change:
    """One write: the object after it (before it, for ``previous``) at ``resource_version``."""

    resource_version: int
    type: str
    obj: dict[str, Any]
    previous: dict[str, Any] | None


class EventLog:
    """The most recent changes of one resource; older ones fall off (then watches get 410 Gone)."""

    def __init__(self, capacity: int) -> None:
        self._changes: collections.deque[Change] = collections.deque(maxlen=capacity)
        self._forgotten_up_to = 0  # the resourceVersion of the newest change that fell off
        self._changed = asyncio.Event()

    def record(self, change: Change) -> None:
        if len(self._changes) == self._changes.maxlen:
            self._forgotten_up_to = self._changes[0].resource_version
        self._changes.append(change)
        # Wake every waiting watch and start a fresh event for the next round of waiting.
        self._changed.set()
        self._changed = asyncio.Event()

    def since(self, resource_version: int) -> list[Change]:
        """Changes newer than ``resource_version``, or 410 Expired if some of them were forgotten."""
        if resource_version < self._forgotten_up_to:
            raise errors.expired(resource_version, self._forgotten_up_to)
        newer: list[Change] = []
        for change in reversed(self._changes):
            if change.resource_version <= resource_version:
                break
            newer.append(change)
        return newer[::-1]

    @property
    def pending(self) -> asyncio.Event:
        """The event that the next change sets; capture it *before* reading, then wait on it."""
        return self._changed


class EventHub:
    """Event logs by storage resource."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._logs: dict[Hashable, EventLog] = {}

    def log(self, resource: Hashable) -> EventLog:
        if resource not in self._logs:
            self._logs[resource] = EventLog(self._capacity)
        return self._logs[resource]


def translate(change: Change, matches: Callable[[dict[str, Any]], bool]) -> tuple[str, dict[str, Any]] | None:
    """How a change looks through a selector: objects entering it are ADDED, leaving it DELETED."""
    now_matching = matches(change.obj)
    if change.type != MODIFIED:
        return (change.type, change.obj) if now_matching else None
    was_matching = change.previous is not None and matches(change.previous)
    if now_matching and was_matching:
        return MODIFIED, change.obj
    if now_matching:
        return ADDED, change.obj
    if was_matching:
        return DELETED, change.obj
    return None


async def follow(
    log: EventLog,
    *,
    since: int,
    matches: Callable[[dict[str, Any]], bool],
    timeout: float | None,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Yield matching changes after ``since`` until ``timeout`` seconds pass (forever if ``None``)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    cursor = since
    while True:
        pending = log.pending
        changes = log.since(cursor)
        for change in changes:
            cursor = change.resource_version
            translated = translate(change, matches)
            if translated is not None:
                yield translated
        if changes:
            continue
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return
        if not pending.is_set():
            try:
                await asyncio.wait_for(pending.wait(), remaining)
            except TimeoutError:
                return
