"""The operator's one scheduler: every "look again later", and long work kept off kopf's handler pool.

Every controller records here when to look at an object again (a Remediation's verification delay, an
approval expiring, the next drift check or HealthCheck, a deployment or project waiting for something
outside it, a running Job's lock holder) instead of running a loop of its own; at that moment the kind's
registered recheck runs. Work a kopf handler would otherwise do itself for a long time (an Investigation's
AWS queries) is `submit`ted here too: the handler awaits the result and records it.

Nothing a tenant creates can starve another tenant's work:

- a global pool of `workers` threads (the scheduler's own, not kopf's), so at most that many rechecks and
  submitted runs at once, whatever the number of objects;
- due work waits in one FIFO per namespace, and the namespaces are served round-robin (`FairQueue`): a
  namespace's next item starts only after every other namespace with due work has had its turn;
- at most `per_namespace` items of one namespace run at once, so one namespace's slow work can hold only
  that many workers, and the others keep theirs;
- one object's work never runs twice at once (a wake-up arriving meanwhile waits for the first to end);
- every run has a `timeout`: a submitter stops waiting then (`WorkTimeout`) and the work's late result is
  dropped; its worker is counted busy until the thread really returns, so the bound stays true.

Moments are wall-clock times (often taken from status), so a restarted operator re-schedules them from what
it reads. An object may hold several moments at once, one per `reason` (the next drift check and a poll
for a running Job's lock, say): it wakes at the earliest, and cancelling one reason leaves the others.
Metrics: queue depth, scheduled moments, work in flight by kind, lateness per namespace, timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from devops_operator import metrics
from devops_operator.kube.redaction import redact

logger = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, namespace, name)
Recheck = Callable[[str, str], None]  # (namespace, name)
T = TypeVar("T")
DEFAULT = "default"


WAIT_CAP_FACTOR = 4  # an object waiting on something outside it is looked at again at most 4x base apart


def waiting_delay(waits: int, base: float) -> float:
    """Seconds until the next look at an object that waited `waits` times in a row (1: the first): base,
    then doubling, at most WAIT_CAP_FACTOR * base (pure, deterministic)."""
    return base * min(2 ** min(max(waits - 1, 0), 16), WAIT_CAP_FACTOR)


class WorkTimeout(TimeoutError):
    """Submitted work ran longer than the scheduler's timeout (the submitter stopped waiting)."""


@dataclass(eq=False)
class Item:
    """One piece of due work: the kind's recheck of an object, or submitted work (with its future)."""

    key: Key
    due: float  # the moment it was due (epoch seconds): lateness is measured from it
    work: Callable[[], Any] | None = None  # None: the kind's registered recheck
    future: asyncio.Future[Any] | None = None

    @property
    def namespace(self) -> str:
        return self.key[1]


class FairQueue:
    """Due work waiting for a worker: one FIFO per namespace, namespaces served round-robin (pure).

    `take` returns the next item to start, or None: from the namespace served longest ago (one never served
    first) among those with an item they may start (fewer than `per_namespace` of their items running, the
    item's object not running already).
    """

    def __init__(self, per_namespace: int) -> None:
        self.per_namespace = max(1, per_namespace)
        self._queues: dict[str, deque[Item]] = {}
        self._running_by_namespace: Counter[str] = Counter()
        self._running: set[Key] = set()
        self._served: dict[str, int] = {}  # namespace -> the turn it was last served in
        self._turn = 0

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    @property
    def running(self) -> int:
        return len(self._running)

    def add(self, item: Item) -> bool:
        """Queue an item; a recheck of an object whose recheck already waits is merged into it (False)."""
        queue = self._queues.get(item.namespace)
        if item.work is None and queue is not None:
            for waiting in queue:
                if waiting.key == item.key and waiting.work is None:
                    waiting.due = min(waiting.due, item.due)
                    return False
        self._queues.setdefault(item.namespace, deque()).append(item)
        return True

    def discard(self, key: Key) -> None:
        """Drop the object's queued rechecks (submitted work stays: its submitter waits for it)."""
        queue = self._queues.get(key[1])
        if queue is None:
            return
        kept = deque(item for item in queue if item.key != key or item.work is not None)
        if kept:
            self._queues[key[1]] = kept
        else:
            del self._queues[key[1]]
            self._tidy(key[1])

    def _startable(self, namespace: str) -> int | None:
        if self._running_by_namespace[namespace] >= self.per_namespace:
            return None
        return next((i for i, item in enumerate(self._queues[namespace]) if item.key not in self._running), None)

    def take(self) -> Item | None:
        chosen: tuple[int, str, int] | None = None  # (last served, namespace, index)
        for namespace in self._queues:
            index = self._startable(namespace)
            if index is None:
                continue
            served = self._served.get(namespace, -1)
            if chosen is None or served < chosen[0]:
                chosen = (served, namespace, index)
        if chosen is None:
            return None
        _, namespace, index = chosen
        queue = self._queues[namespace]
        item = queue[index]
        del queue[index]
        if not queue:
            del self._queues[namespace]
        self._running.add(item.key)
        self._running_by_namespace[namespace] += 1
        self._served[namespace] = self._turn
        self._turn += 1
        return item

    def done(self, item: Item) -> None:
        self._running.discard(item.key)
        self._running_by_namespace[item.namespace] -= 1
        if self._running_by_namespace[item.namespace] <= 0:
            del self._running_by_namespace[item.namespace]
        self._tidy(item.namespace)

    def _tidy(self, namespace: str) -> None:
        """A namespace with nothing queued or running is forgotten (its next item is served first again)."""
        if namespace not in self._queues and not self._running_by_namespace.get(namespace):
            self._served.pop(namespace, None)


class Wakeups:
    """The scheduler (see the module docstring). `run` is its one background task."""

    def __init__(self, clock: Callable[[], float] = time.time, *, workers: int = 8, per_namespace: int = 2,
                 timeout: float = 300.0, retry_after: float = 30.0, max_sleep: float = 1.0) -> None:
        self.clock = clock
        self.workers = max(1, workers)
        self.timeout = timeout
        self.retry_after = retry_after
        self.max_sleep = max_sleep
        self._lock = threading.Lock()
        self._due: dict[Key, dict[str, float]] = {}
        self._queue = FairQueue(per_namespace)
        self._rechecks: dict[str, Recheck] = {}
        self._periodic: list[list[Any]] = []  # [seconds, function, next moment]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- what to run ---------------------------------------------------------------------------------

    def register(self, kind: str, recheck: Recheck) -> None:
        self._rechecks[kind] = recheck

    def every(self, seconds: float, function: Callable[[], None]) -> None:
        """Call a cheap function (a gauge's refresh) every `seconds` from the scheduler's own task."""
        with self._lock:
            self._periodic.append([max(seconds, 0.05), function, self.clock() + seconds])

    # -- when ------------------------------------------------------------------------------------------

    def schedule(self, kind: str, namespace: str, name: str, at: float, reason: str = DEFAULT) -> None:
        """Look at the object at `at` (epoch seconds); replaces any earlier moment of the same reason."""
        with self._lock:
            self._due.setdefault((kind, namespace, name), {})[reason] = at
        self._notify()

    def schedule_earliest(self, kind: str, namespace: str, name: str, at: float, reason: str = DEFAULT) -> None:
        """Look at the object at `at`, or earlier if something already asked for earlier (same reason)."""
        with self._lock:
            moments = self._due.setdefault((kind, namespace, name), {})
            moments[reason] = min(moments.get(reason, at), at)
        self._notify()

    def cancel(self, kind: str, namespace: str, name: str, reason: str | None = None) -> None:
        """Forget the object's moment of `reason`, or (None) all of them and any recheck of it still queued."""
        key = (kind, namespace, name)
        with self._lock:
            if reason is None:
                self._due.pop(key, None)
                self._queue.discard(key)
                return
            moments = self._due.get(key)
            if moments is not None:
                moments.pop(reason, None)
                if not moments:
                    del self._due[key]

    def scheduled(self, kind: str, namespace: str, name: str, reason: str | None = None) -> float | None:
        with self._lock:
            moments = self._due.get((kind, namespace, name)) or {}
            if reason is not None:
                return moments.get(reason)
            return min(moments.values()) if moments else None

    def take_due(self) -> list[Key]:
        """The objects whose moment has come (each once, their due moments forgotten), by namespace and name."""
        with self._lock:
            due = self._take_due(self.clock())
        return sorted((key for key, _ in due), key=lambda k: k[1:])

    def _take_due(self, now: float) -> list[tuple[Key, float]]:
        due: list[tuple[Key, float]] = []
        for key, moments in list(self._due.items()):
            passed = [at for at in moments.values() if at <= now]
            if not passed:
                continue
            due.append((key, min(passed)))
            for reason in [r for r, at in moments.items() if at <= now]:
                del moments[reason]
            if not moments:
                del self._due[key]
        return sorted(due, key=lambda entry: entry[1])

    # -- dispatching (deterministic: tests drive it with their own clock) ------------------------------

    def dispatch(self) -> list[Item]:
        """Queue what is due now and take the items to start, within the worker and per-namespace bounds."""
        with self._lock:
            for key, at in self._take_due(self.clock()):
                if key[0] in self._rechecks:
                    self._queue.add(Item(key, at))
            started = []
            while self._queue.running < self.workers:
                item = self._queue.take()
                if item is None:
                    break
                started.append(item)
            return started

    def finished(self, item: Item) -> None:
        with self._lock:
            self._queue.done(item)
        self._notify()

    async def submit(self, kind: str, namespace: str, name: str, work: Callable[[], T]) -> T:
        """Run `work` on a worker, in the namespace's turn; the result (or exception, or WorkTimeout)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.add(Item((kind, namespace, name), self.clock(), work, future))
        self._notify()
        return await future

    # -- the background task ----------------------------------------------------------------------------

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing is waiting any more
                loop.call_soon_threadsafe(wake.set)

    def _sleep_for(self) -> float:
        now = self.clock()
        with self._lock:
            moments = [at for times in self._due.values() for at in times.values()]
            moments += [entry[2] for entry in self._periodic]
        upcoming = min(moments, default=now + self.max_sleep)
        return min(max(upcoming - now, 0.0), self.max_sleep)

    def _housekeeping(self) -> None:
        now = self.clock()
        with self._lock:
            due = [entry for entry in self._periodic if entry[2] <= now]
            for entry in due:
                entry[2] = now + entry[0]
        for _, function, _ in due:
            try:
                function()
            except Exception as exc:  # a gauge's refresh must not stop the scheduler
                logger.warning("periodic %s failed: %s", getattr(function, "__name__", function), redact(str(exc)))

    def _record_gauges(self) -> None:
        with self._lock:
            metrics.SCHEDULER_QUEUE_DEPTH.set(len(self._queue))
            metrics.SCHEDULER_SCHEDULED.set(len(self._due))

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="scheduler")
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()
                for item in self.dispatch():
                    task = asyncio.create_task(self._execute(item, pool), name=f"scheduled {'/'.join(item.key)}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                self._housekeeping()
                self._record_gauges()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._sleep_for())
        finally:
            for task in tasks:
                task.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            self._loop = self._wake = None

    async def _execute(self, item: Item, pool: ThreadPoolExecutor) -> None:
        kind, namespace, name = item.key
        metrics.SCHEDULER_LATENESS.labels(metrics.scheduler_namespace(namespace)).observe(
            max(0.0, self.clock() - item.due))
        metrics.SCHEDULER_IN_FLIGHT.labels(kind).inc()
        try:
            work = item.work
            if work is None:
                recheck = self._rechecks[kind]

                def work() -> None:
                    recheck(namespace, name)

            running = asyncio.wrap_future(pool.submit(work))
            done, _ = await asyncio.wait({running}, timeout=self.timeout)
            if not done:
                metrics.SCHEDULER_TIMEOUTS.labels(kind).inc()
                logger.warning("%s %s/%s still runs after %gs: its result will be dropped", kind, namespace,
                               name, self.timeout)
                if item.future is not None and not item.future.done():
                    item.future.set_exception(WorkTimeout(
                        f"the work took longer than {self.timeout:g}s (the operator's work timeout)"))
                await asyncio.wait({running})  # the worker stays counted busy until the thread returns
            exc = running.exception()
            if item.future is not None:
                if not item.future.done():
                    if exc is not None:
                        item.future.set_exception(exc)
                    else:
                        item.future.set_result(running.result())
            elif exc is not None:  # one object's failure must not stop the others' wake-ups
                logger.warning("recheck of %s %s/%s failed (again in %.0fs): %s", kind, namespace, name,
                               self.retry_after, redact(str(exc)))
                with self._lock:
                    self._due.setdefault(item.key, {}).setdefault(DEFAULT, self.clock() + self.retry_after)
        finally:
            metrics.SCHEDULER_IN_FLIGHT.labels(kind).dec()
            self.finished(item)
