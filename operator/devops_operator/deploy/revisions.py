"""Which commit a deployment's git branch (or tag, or HEAD) names now, looked up at most once per interval.

`spec.interval` is how often the source is re-resolved: the operator asks the remote (`git ls-remote`,
nothing fetched) and puts the commit into the plan request, so a new commit on the branch makes a new plan
(and voids a pending approval, which named the old one). Between lookups the last answer stands; a lookup
that fails keeps the last known commit, so a flaky remote never re-plans anything by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Lookup:
    revision: str | None
    error: str | None  # the last lookup failed (the revision is the last known one, if any)
    fresh: bool  # looked up just now


class RevisionCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, ...], tuple[str, float]] = {}
        self._failed: dict[tuple[str, ...], tuple[str, float]] = {}

    def revision(self, key: tuple[str, ...], ttl: float, lookup: Callable[[], str],
                 last_known: str | None = None) -> Lookup:
        now = self.clock()
        with self._lock:
            cached = self._seen.get(key)
            failed = self._failed.get(key)
        known = cached[0] if cached is not None else last_known
        if failed is not None and now - failed[1] < ttl:  # a failing remote is asked once per interval too
            return Lookup(known, failed[0], False)
        if cached is not None and now - cached[1] < ttl:
            return Lookup(cached[0], None, False)
        try:
            revision = lookup()
        except Exception as exc:  # the remote is down, the credentials were rotated: keep what was known
            with self._lock:
                self._failed[key] = (str(exc), now)
            return Lookup(known, str(exc), True)
        with self._lock:
            self._seen[key] = (revision, now)
            self._failed.pop(key, None)
        return Lookup(revision, None, True)

    def forget(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._seen.pop(key, None)
            self._failed.pop(key, None)
