"""One noisy namespace, one quiet one: how late the quiet namespace's wake-ups run.

The operator's one scheduler (`controllers/wakeups.py`) runs every "look again later" of every kind. The
noisy namespace has many objects whose rechecks are slow (each blocks a worker for `slow` seconds, as a
recheck waiting on a slow AWS endpoint or git host does) and that ask to be looked at again at once; the
quiet namespace has one object that asks to be looked at every `period` seconds. Lateness is how long after
its moment a wake-up starts (measured by the recheck itself, wall clock). The same code drives the
scheduler through its public API only (`register`, `schedule`, `run`), so it measured the one-at-a-time
loop this scheduler replaced as well (docs/performance.md has both figures).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from benchmarks.harness import percentile, scaled
from devops_operator.controllers.wakeups import Wakeups

KIND = "Bench"
NOISY, QUIET = "noisy", "quiet"


def run_one(noisy_objects: int, seconds: float, *, slow: float = 0.3, period: float = 0.5) -> dict[str, Any]:
    wakeups = Wakeups()
    lock = threading.Lock()
    due: dict[tuple[str, str], float] = {}
    lateness: dict[str, list[float]] = {NOISY: [], QUIET: []}
    stop_at = time.time() + seconds

    def again(namespace: str, name: str, at: float) -> None:
        with lock:
            due[(namespace, name)] = at
        wakeups.schedule(KIND, namespace, name, at)

    def recheck(namespace: str, name: str) -> None:
        started = time.time()
        with lock:
            lateness[namespace].append(started - due.pop((namespace, name)))
        if namespace == NOISY:
            time.sleep(slow)  # a slow recheck: a worker is busy for this long
        if started < stop_at:
            again(namespace, name, time.time() + (period if namespace == QUIET else 0.0))

    wakeups.register(KIND, recheck)
    now = time.time()
    for index in range(noisy_objects):
        again(NOISY, f"busy-{index:03d}", now)
    again(QUIET, "calm", now + period)

    async def drive() -> None:
        task = asyncio.create_task(wakeups.run())
        await asyncio.sleep(seconds + slow * 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(drive())
    quiet, noisy = lateness[QUIET], lateness[NOISY]
    if not quiet:
        raise RuntimeError(f"the quiet namespace's wake-up never ran in {seconds:.0f}s")
    return {
        "noisy_objects": noisy_objects,
        "slow_recheck_seconds": slow,
        "quiet_period_seconds": period,
        "seconds": seconds,
        "quiet_wakeups": len(quiet),
        "quiet_lateness_p50_seconds": round(percentile(quiet, 0.5), 3),
        "quiet_lateness_p95_seconds": round(percentile(quiet, 0.95), 3),
        "quiet_lateness_max_seconds": round(max(quiet), 3),
        "noisy_rechecks": len(noisy),
        "noisy_lateness_p50_seconds": round(percentile(noisy, 0.5), 3) if noisy else None,
    }


SIZES = (30,)
SECONDS = 20.0


def run(scale: float = 1.0) -> dict[str, Any]:
    seconds = max(2.0, SECONDS * scale)
    return {"runs": [run_one(scaled(size, scale), seconds) for size in SIZES]}
