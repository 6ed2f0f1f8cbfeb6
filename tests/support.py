"""Helpers the tests share: waiting for conditions, reading our custom objects."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION

T = TypeVar("T")


def wait_until(check: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.1,
               what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def get_custom(api: ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any]:
    obj = CustomObjectsApi(api).get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural, name)
    assert isinstance(obj, dict)
    return obj


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def wait_for_condition(api: ApiClient, plural: str, namespace: str, name: str, ctype: str,
                       status: str = "True", *, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the object's condition has the status, for the object's current generation."""
    def check() -> dict[str, Any] | None:
        obj = get_custom(api, plural, namespace, name)
        cond = condition(obj, ctype)
        observed = (obj.get("status") or {}).get("observedGeneration")
        if cond and cond.get("status") == status and observed == obj["metadata"].get("generation"):
            return obj
        return None
    return wait_until(check, timeout=timeout, what=f"{plural}/{name} {ctype}={status}")
