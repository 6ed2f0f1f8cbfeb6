"""Counting the AWS API calls the operator makes.

The session factory attaches one `AwsCallMeter` to every boto3 session it builds, so every
client inherits two botocore event hooks:

- `before-call` fires once per logical API call (retries happen further down, inside the
  endpoint), so it counts calls exactly as the code made them;
- `after-call` carries the parsed response, whose `ResponseMetadata.RetryAttempts` says how
  many times botocore retried that call (throttling, 5xx, dropped connections).

Counts are kept per (service, operation) in memory, for tests and benchmarks that compare
call counts (the exact figure; moto answers too fast for wall time to mean much), and in the
Prometheus counters `devops_operator_aws_api_calls_total` and
`devops_operator_aws_api_retries_total`.
"""

from __future__ import annotations

import threading
from collections import Counter as TallyCounter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from prometheus_client import Counter

AWS_API_CALLS = Counter(
    "devops_operator_aws_api_calls_total",
    "AWS API calls made by the operator (one per call, not per retry).",
    ["service", "operation"],
)
AWS_API_RETRIES = Counter(
    "devops_operator_aws_api_retries_total",
    "Retries botocore made of AWS API calls (throttling, server errors, dropped connections).",
    ["service", "operation"],
)

CallKey = tuple[str, str]
"""(service, operation), e.g. ("cloudwatch", "GetMetricData")."""


def _sum(tally: Mapping[CallKey, int], service: str | None, operation: str | None) -> int:
    return sum(
        n
        for (svc, op), n in tally.items()
        if (service is None or svc == service) and (operation is None or op == operation)
    )


@dataclass(frozen=True)
class CallStats:
    """An immutable copy of call and retry counts."""

    calls: Mapping[CallKey, int] = field(default_factory=dict)
    retries: Mapping[CallKey, int] = field(default_factory=dict)

    def count(self, service: str | None = None, operation: str | None = None) -> int:
        """Calls of one service (and operation); every call when both are None."""
        return _sum(self.calls, service, operation)

    def retry_count(self, service: str | None = None, operation: str | None = None) -> int:
        """Retries of one service (and operation); every retry when both are None."""
        return _sum(self.retries, service, operation)

    @property
    def total(self) -> int:
        return self.count()


class _Tally:
    """Thread-safe call and retry counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: TallyCounter[CallKey] = TallyCounter()
        self._retries: TallyCounter[CallKey] = TallyCounter()

    def add_call(self, key: CallKey) -> None:
        with self._lock:
            self._calls[key] += 1

    def add_retries(self, key: CallKey, retries: int) -> None:
        with self._lock:
            self._retries[key] += retries

    def snapshot(self) -> CallStats:
        with self._lock:
            return CallStats(calls=dict(self._calls), retries=dict(self._retries))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._retries.clear()


class Measurement:
    """The calls made while one `AwsCallMeter.measure()` block was open (live inside it)."""

    def __init__(self) -> None:
        self._tally = _Tally()

    def count(self, service: str | None = None, operation: str | None = None) -> int:
        return self._tally.snapshot().count(service, operation)

    def retries(self, service: str | None = None, operation: str | None = None) -> int:
        return self._tally.snapshot().retry_count(service, operation)

    @property
    def total(self) -> int:
        return self.count()

    def snapshot(self) -> CallStats:
        return self._tally.snapshot()


def _operation_key(model: Any) -> CallKey:
    """(service, operation) of a botocore OperationModel; service is the client's name (`s3`)."""
    return (str(model.service_model.service_name), str(model.name))


def _retry_attempts(parsed: Any) -> int:
    if not isinstance(parsed, Mapping):
        return 0
    metadata = parsed.get("ResponseMetadata")
    if not isinstance(metadata, Mapping):
        return 0
    attempts = metadata.get("RetryAttempts", 0)
    return attempts if isinstance(attempts, int) else 0


class AwsCallMeter:
    """Counts AWS API calls and retries of every session it is attached to.

    Measurements count every call made while they are open, from any thread: the operator's
    handlers run in threads, and a call belongs to whichever measurement is open.
    """

    def __init__(self) -> None:
        self._tally = _Tally()
        self._lock = threading.Lock()
        self._open: list[Measurement] = []
        self._hook_id = f"devops-operator-meter-{id(self)}"

    def attach(self, session: boto3.Session) -> None:
        """Register the hooks on a session (before any client is made from it); idempotent."""
        events = session.events
        events.register("before-call", self._on_before_call, unique_id=f"{self._hook_id}-call")
        events.register("after-call", self._on_after_call, unique_id=f"{self._hook_id}-retries")

    def snapshot(self) -> CallStats:
        return self._tally.snapshot()

    def count(self, service: str, operation: str | None = None) -> int:
        return self._tally.snapshot().count(service, operation)

    def retries(self, service: str, operation: str | None = None) -> int:
        return self._tally.snapshot().retry_count(service, operation)

    def reset(self) -> None:
        """Forget the in-memory counts (Prometheus counters only ever go up)."""
        self._tally.reset()

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        """Count the calls made inside the block: `with meter.measure() as m: ...; m.count("s3")`."""
        measurement = Measurement()
        with self._lock:
            self._open.append(measurement)
        try:
            yield measurement
        finally:
            with self._lock:
                self._open.remove(measurement)

    def _tallies(self) -> list[_Tally]:
        with self._lock:
            return [self._tally, *(m._tally for m in self._open)]

    def _on_before_call(self, model: Any, **_: Any) -> None:
        key = _operation_key(model)
        for tally in self._tallies():
            tally.add_call(key)
        AWS_API_CALLS.labels(service=key[0], operation=key[1]).inc()

    def _on_after_call(self, model: Any, parsed: Any = None, **_: Any) -> None:
        retries = _retry_attempts(parsed)
        if retries <= 0:
            return
        key = _operation_key(model)
        for tally in self._tallies():
            tally.add_retries(key, retries)
        AWS_API_RETRIES.labels(service=key[0], operation=key[1]).inc(retries)


METER = AwsCallMeter()
"""The process-wide meter the session factory attaches by default."""
