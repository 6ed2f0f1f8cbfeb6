"""Which commit a deployment's git branch (or tag, or HEAD) names now, looked up at most once per interval.

`spec.interval` is how often the source is re-resolved: the operator asks the remote (`git ls-remote`,
nothing fetched) and puts the commit into the plan request, so a new commit on the branch makes a new plan
(and voids a pending approval, which named the old one). Between lookups the last answer stands; a lookup
that fails keeps the last known commit, so a flaky remote never re-plans anything by itself.

The remote is the tenant's choice, so the lookup never runs on a reconcile: `revision` answers at once
from what is known and, when a lookup is due, hands it to a small pool of its own (at most one lookup in
flight per key); when it ends, `on_done` wakes the deployment, which then reads the new answer. Which hosts
the operator may ask at all is the tenancy policy's (`gitHosts`); `spec.interval` has a floor
(`api.infradeployment.MIN_INTERVAL`). A failed lookup is remembered as a category with a fixed message
(`LookupFailure`): what the remote answered never reaches a condition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LOOKUP_WORKERS = 2


class LookupFailure(Exception):
    """A lookup that failed, as far as a tenant may be told: a category and a fixed message."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


@dataclass(frozen=True)
class Lookup:
    revision: str | None
    error: str | None  # the last lookup failed (the revision is the last known one, if any): its fixed message
    fresh: bool  # the answer came in since the previous call for this key
    pending: bool = False  # a lookup is under way (its answer arrives with on_done)
    category: str | None = None  # the failure's category (LookupFailure.category), for the condition's reason


class RevisionCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic, workers: int = LOOKUP_WORKERS) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, ...], tuple[str, float]] = {}
        self._failed: dict[tuple[str, ...], tuple[LookupFailure, float]] = {}
        self._pending: set[tuple[str, ...]] = set()
        self._unread: set[tuple[str, ...]] = set()  # answers that came in and were not handed out yet
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="git-lookup")

    def revision(self, key: tuple[str, ...], ttl: float, lookup: Callable[[], str],
                 last_known: str | None = None, on_done: Callable[[], None] | None = None) -> Lookup:
        """What is known now; starts a lookup in the background when one is due (never waits for it)."""
        now = self.clock()
        with self._lock:
            cached = self._seen.get(key)
            failed = self._failed.get(key)
            pending = key in self._pending
            fresh = key in self._unread
            self._unread.discard(key)
            known = cached[0] if cached is not None else last_known
            last = max((entry[1] for entry in (cached, failed) if entry is not None), default=None)
            due = not pending and (last is None or now - last >= ttl)
            if due:
                self._pending.add(key)
        if due:
            self._pool.submit(self._look_up, key, lookup, on_done)
        if failed is not None and (cached is None or failed[1] > cached[1]):
            return Lookup(known, str(failed[0]), fresh, pending or due, failed[0].category)
        return Lookup(known, None, fresh, pending or due)

    def _look_up(self, key: tuple[str, ...], lookup: Callable[[], str], on_done: Callable[[], None] | None) -> None:
        try:
            revision = lookup()
        except LookupFailure as exc:
            result: tuple[str | None, LookupFailure | None] = (None, exc)
        except Exception as exc:  # a bug in the lookup: a fixed message; the detail goes to the log only
            logger.exception("git lookup %s failed unexpectedly", key[1:2])
            result = (None, LookupFailure("Failed", f"the lookup failed ({type(exc).__name__})"))
        else:
            result = (revision, None)
        with self._lock:
            now = self.clock()
            if result[1] is None:
                assert result[0] is not None
                self._seen[key] = (result[0], now)
                self._failed.pop(key, None)
            else:
                self._failed[key] = (result[1], now)
            self._pending.discard(key)
            self._unread.add(key)
        if on_done is not None:
            try:
                on_done()
            except Exception:  # waking is best effort: the next interval looks again anyway
                logger.exception("waking after the git lookup of %s failed", key[1:2])

    def forget(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._seen.pop(key, None)
            self._failed.pop(key, None)
            self._unread.discard(key)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
