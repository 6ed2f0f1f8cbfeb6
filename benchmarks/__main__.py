"""`make bench`: run every benchmark (each `benchmarks/bench_*.py`), print the figures, save them under
benchmarks/results/.

    python -m benchmarks [--scale S] [--no-save] [name ...]

Every benchmark module has `run(scale)`: scale 1 is the size docs/performance.md reports; the test
suite runs each one at a tiny scale (tests/test_benchmarks_smoke.py) so that one that no longer
runs fails CI. A new `bench_<name>.py` is picked up without being listed anywhere.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import save

PREFIX = "bench_"

Benchmark = Callable[..., dict[str, Any]]


def discover() -> dict[str, Benchmark]:
    """Every benchmark, by name (`bench_store.py` is `store`), in name order."""
    modules = sorted(path.stem for path in Path(__file__).resolve().parent.glob(f"{PREFIX}*.py"))
    return {
        name.removeprefix(PREFIX): importlib.import_module(f"benchmarks.{name}").run for name in modules
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1)")
    parser.add_argument("--no-save", action="store_true", help="print only; leave benchmarks/results/ alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("kopf", "werkzeug", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    benchmarks = discover()
    unknown = sorted(set(args.names) - set(benchmarks))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    for name, run in benchmarks.items():
        if args.names and name not in args.names:
            continue
        result = run(scale=args.scale)
        if not args.no_save:
            save(name, result)
        print(f"== {name}\n{json.dumps(result, indent=2)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
