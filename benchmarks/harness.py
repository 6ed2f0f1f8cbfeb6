"""Shared set-up for benchmarks: the same emulators and in-process operator the tests use."""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_operator.api.crdgen import render_all
from devops_operator.config import OperatorConfig
from devops_operator.kube import client as kube_client
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.aws import emulated_aws
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.sandbox.tenancy import sandbox_policy

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_NAMESPACES = "bench-*"


@dataclass
class Stack:
    kube: EmulatedKubernetes
    aws_url: str
    operator: OperatorThread | None


@contextmanager
def stack(with_operator: bool = True) -> Iterator[Stack]:
    with EmulatedKubernetes() as kube, emulated_aws() as aws_url:
        for crd in render_all().values():
            kube.register_crd(crd)
        kube_client.configure(host=kube.url)
        if not with_operator:
            yield Stack(kube, aws_url, None)
            return
        # The benchmarks' namespaces (bench-*) may use the ambient dummy keys, as the sandbox's may.
        config = dataclasses.replace(OperatorConfig.from_env({}), kube_api_url=kube.url, aws_endpoint_url=aws_url,
                                     metrics_port=0, liveness_endpoint="",
                                     tenancy_policy=sandbox_policy(BENCH_NAMESPACES, aws_url))
        with OperatorThread(config) as operator:
            yield Stack(kube, aws_url, operator)


def scaled(size: int, scale: float) -> int:
    """A benchmark's size at `scale` (1: as documented), never below one."""
    return max(1, round(size * scale))


def max_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started


def save(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
