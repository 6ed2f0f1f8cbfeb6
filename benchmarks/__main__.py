"""`make bench`: run every benchmark, print the figures, save them under benchmarks/results/."""

from __future__ import annotations

import json
import logging
import sys

from benchmarks import bench_projects, bench_store, bench_validation
from benchmarks.harness import save

BENCHMARKS = {
    "validation": bench_validation.run,
    "store": bench_store.run,
    "projects": bench_projects.run,
}


def main(selected: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("kopf", "werkzeug", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for name, run in BENCHMARKS.items():
        if selected and name not in selected:
            continue
        result = run()
        save(name, result)
        print(f"== {name}\n{json.dumps(result, indent=2)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
