"""The ConfigMap document store: appends one after another and from concurrent writers."""

from __future__ import annotations

import threading
from typing import Any

from benchmarks.harness import Timer, percentile, scaled, stack
from devops_operator.kube import client as kube_client
from devops_operator.kube.store import AppendLog


def sequential(url: str, count: int) -> dict[str, Any]:
    api = kube_client.new_api_client(url)
    log = AppendLog(api, "bench", "sequential", max_entries=10_000)
    timings = []
    before = api.requests_made()
    for index in range(count):
        with Timer() as timer:
            log.append({"n": index, "message": f"entry {index}"})
        timings.append(timer.seconds * 1000)
    requests = api.requests_made() - before
    window = min(100, count)
    return {
        "appends": count,
        "p50_ms": round(percentile(timings, 0.5), 2),
        "p95_ms": round(percentile(timings, 0.95), 2),
        f"first_{window}_mean_ms": round(sum(timings[:window]) / window, 2),
        f"last_{window}_mean_ms": round(sum(timings[-window:]) / window, 2),
        "requests_per_append": round(requests / count, 2),
        "entries_kept": len(log.entries()),
    }


def concurrent(url: str, writers: int, each: int) -> dict[str, Any]:
    logs = [AppendLog(kube_client.new_api_client(url), "bench", f"concurrent-{writers}", max_entries=10_000)
            for _ in range(writers)]

    failures: list[BaseException] = []

    def write(log: AppendLog, writer: int) -> None:
        for index in range(each):
            try:
                log.append({"writer": writer, "n": index})
            except Exception as exc:  # a writer that gives up is counted, not hidden
                failures.append(exc)

    threads = [threading.Thread(target=write, args=(log, w)) for w, log in enumerate(logs)]
    with Timer() as timer:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    kept = logs[0].entries()
    conflicts = sum(log.document.conflicts for log in logs)
    return {
        "writers": writers,
        "appends_each": each,
        "seconds": round(timer.seconds, 3),
        "entries_kept": len(kept),
        "appends_missing": writers * each - len(kept),
        "conflicts_retried": conflicts,
        "appends_given_up": len(failures),
    }


SEQUENTIAL_APPENDS = 500
WRITERS = (4, 8)
APPENDS_PER_WRITER = 100


def run(scale: float = 1.0) -> dict[str, Any]:
    with stack(with_operator=False) as running:
        return {
            "sequential": sequential(running.kube.url, scaled(SEQUENTIAL_APPENDS, scale)),
            "concurrent": [
                concurrent(running.kube.url, writers, scaled(APPENDS_PER_WRITER, scale)) for writers in WRITERS
            ],
        }
