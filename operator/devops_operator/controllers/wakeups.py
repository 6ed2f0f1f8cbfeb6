"""Looking at objects again at a given moment, outside kopf's handlers.

A Remediation waits `verification.delay` after acting, re-checks until `verification.timeout`, and an
assessment waiting for approval may expire; an Investigation or a Remediation whose DevOpsProject is not
Ready yet waits for it. None of that is an error, so none of it is a kopf handler failing and retrying
(which logs ERROR each time): the controller records when to look again here, and this background task
calls the kind's recheck at that moment (as `ProjectRechecks` does for projects). Moments are wall-clock
times taken from status, so a restarted operator re-schedules them from what it reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from devops_operator.kube.redaction import redact

logger = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, namespace, name)
Recheck = Callable[[str, str], None]  # (namespace, name)


class Wakeups:
    def __init__(self, clock: Callable[[], float] = time.time, tick: float = 0.5, retry_after: float = 30.0) -> None:
        self.clock = clock
        self.tick = tick
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._due: dict[Key, float] = {}
        self._rechecks: dict[str, Recheck] = {}

    def register(self, kind: str, recheck: Recheck) -> None:
        self._rechecks[kind] = recheck

    def schedule(self, kind: str, namespace: str, name: str, at: float) -> None:
        """Look at the object at `at` (epoch seconds); replaces any earlier schedule of it."""
        with self._lock:
            self._due[(kind, namespace, name)] = at

    def schedule_earliest(self, kind: str, namespace: str, name: str, at: float) -> None:
        """Look at the object at `at`, or earlier if something else already asked for earlier."""
        with self._lock:
            key = (kind, namespace, name)
            self._due[key] = min(self._due.get(key, at), at)

    def cancel(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._due.pop((kind, namespace, name), None)

    def scheduled(self, kind: str, namespace: str, name: str) -> float | None:
        with self._lock:
            return self._due.get((kind, namespace, name))

    def take_due(self) -> list[Key]:
        now = self.clock()
        with self._lock:
            due = [key for key, at in self._due.items() if at <= now]
            for key in due:
                del self._due[key]
        return sorted(due, key=lambda k: k[1:])

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            for kind, namespace, name in self.take_due():
                recheck = self._rechecks.get(kind)
                if recheck is None:
                    continue
                try:
                    await asyncio.to_thread(recheck, namespace, name)
                except Exception as exc:  # one object's failure must not stop the others' wake-ups
                    logger.warning("recheck of %s %s/%s failed (again in %.0fs): %s", kind, namespace, name,
                                   self.retry_after, redact(str(exc)))
                    with self._lock:
                        self._due.setdefault((kind, namespace, name), self.clock() + self.retry_after)
