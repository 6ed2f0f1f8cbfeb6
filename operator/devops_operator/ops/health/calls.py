"""Counting the AWS calls one check makes (besides GetMetricData, which `FetchStats` counts).

The process-wide meter (`aws/metering.py`) counts every call of every thread; a check needs its own
figures for its status, while other checks run at the same time, so each call it makes goes through
`CallCounter.call`, which counts the request and botocore's retries of it, answered or refused.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

ClientFor = Callable[[str, str | None], Any]
"""(service, region or None for the environment's) -> a boto3 client."""


def _retries(response: Any) -> int:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    attempts = metadata.get("RetryAttempts") if isinstance(metadata, dict) else 0
    return attempts if isinstance(attempts, int) else 0


class CallCounter:
    """Requests by `service:Operation`, and the retries botocore made of them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries = 0

    def call(self, client: Any, method: str, **params: Any) -> Any:
        operation = client.meta.method_to_api_mapping.get(method, method)
        key = f"{client.meta.service_model.service_name}:{operation}"
        try:
            response = getattr(client, method)(**params)
        except ClientError as exc:
            self._add(key, _retries(exc.response))
            raise
        self._add(key, _retries(response))
        return response

    def _add(self, key: str, retries: int) -> None:
        with self._lock:
            self.calls[key] += 1
            self.retries += retries

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def count(self, key: str) -> int:
        with self._lock:
            return self.calls[key]
