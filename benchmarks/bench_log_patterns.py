"""Clustering log lines into error patterns: time and peak memory for 10,000 and 100,000 lines.

The lines are the real-world shapes of tests/fixtures/logs (Lambda, ECS, RDS) with their variable parts
(ids, UUIDs, numbers, timestamps, addresses) drawn afresh for every line, so they cluster the way a real
log group does: few patterns, every line different. The lines are made before the clock starts; the time
is measured without tracing, and the peak memory in a second pass under tracemalloc, counting only what
`cluster` allocates: it grows with the distinct patterns, not with the lines. A worst case where every
line is a new pattern shows the `max_signatures` bound.
"""

from __future__ import annotations

import random
import re
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Timer, scaled
from devops_operator.ops.investigation.patterns import LogEvent, cluster

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "logs"
SIZES = (10_000, 100_000)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DIGITS = re.compile(r"(?<![A-Za-z])\d")  # variable numbers; digits inside words (s3, ec2) stay


def templates() -> list[str]:
    return [line for name in ("lambda", "ecs", "rds")
            for line in (FIXTURES / f"{name}.log").read_text().splitlines() if line.strip()]


def lines(count: int, seed: int = 7) -> Iterator[LogEvent]:
    rng = random.Random(seed)
    shapes = templates()
    for index in range(count):
        line = _UUID.sub(lambda _: str(uuid.UUID(int=rng.getrandbits(128))), rng.choice(shapes))
        line = _DIGITS.sub(lambda _: str(rng.randrange(10)), line)
        yield LogEvent(1_700_000_000_000 + index, line, "/bench")


def distinct_lines(count: int) -> Iterator[LogEvent]:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    for index in range(count):
        word = "".join(words[(index >> shift) % 8] for shift in (0, 3, 6, 9, 12, 15))
        yield LogEvent(index, f"ERROR {word} failed", "/bench")


def measure(events: list[LogEvent]) -> dict[str, Any]:
    with Timer() as timer:
        found = cluster(iter(events))
    tracemalloc.start()
    cluster(iter(events))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert found.events == len(events)
    return {
        "lines": len(events),
        "seconds": round(timer.seconds, 3),
        "lines_per_second": round(len(events) / timer.seconds),
        "us_per_line": round(timer.seconds / len(events) * 1e6, 2),
        "patterns": found.distinct,
        "unclustered": found.unclustered,
        "peak_memory_mib": round(peak / 2**20, 2),
    }


def run(scale: float = 1.0) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in SIZES:
        count = scaled(size, scale)
        results[f"realistic_{size}"] = measure(list(lines(count)))
    worst = scaled(SIZES[-1], scale)
    results[f"every_line_distinct_{SIZES[-1]}"] = measure(list(distinct_lines(worst)))
    small, large = (results[f"realistic_{size}"] for size in SIZES)
    results["time_per_line_ratio_large_to_small"] = round(large["us_per_line"] / small["us_per_line"], 2)
    return results
