"""Every benchmark still runs: each `benchmarks/bench_*.py`, found by glob, run once at a tiny scale.

Each runs in a process of its own, through the same entry point as `make bench`: a benchmark starts
its own emulators and operator and points the process-wide Kubernetes client at them, which must
not leak into the other tests. Nothing here measures time; the benchmarks check what they count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(path.stem.removeprefix("bench_") for path in (ROOT / "benchmarks").glob("bench_*.py"))
SMOKE_SCALE = "0.01"

pytestmark = pytest.mark.integration  # they start emulators (`make unit` leaves them out)


def test_benchmarks_are_found() -> None:
    assert {"projects", "store", "validation"} <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_a_tiny_scale(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scale", SMOKE_SCALE, "--no-save", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    header, _, body = result.stdout.partition("\n")
    assert header == f"== {name}", result.stdout
    figures = json.loads(body)
    assert isinstance(figures, dict) and figures, result.stdout
