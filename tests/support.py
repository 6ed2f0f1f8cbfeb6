"""Helpers the tests share: waiting for conditions, reading our custom objects."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api import ALL_KINDS
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import CredentialsSource
from devops_operator.tenancy import TenancyPolicy, TenancyRule

T = TypeVar("T")

# The test operator's tenancy policy: namespaces named policy-* get a tenant's restrictions (their
# own keys, roles from one pattern, one account); every other test namespace may use anything, so
# the rest of the suite runs with moto's ambient dummy keys and endpoint overrides to localhost.
RESTRICTED_NAMESPACES = "policy-*"
ALLOWED_ROLES = "arn:aws:iam::123456789012:role/allowed-*"
TEST_POLICY = TenancyPolicy(
    operator_namespace="devops-operator",
    endpoint_hosts=["127.0.0.1", "localhost"],
    rules=[
        TenancyRule(
            name="restricted",
            namespaces=[RESTRICTED_NAMESPACES],
            credential_sources=[CredentialsSource.SECRET, CredentialsSource.IRSA],
            role_arns=[ALLOWED_ROLES],
            account_ids=["123456789012"],
        ),
        TenancyRule(
            name="tests",
            credential_sources=list(CredentialsSource),
            role_arns=["*"],
            endpoint_overrides=True,
            # The operator asks local repositories and 127.0.0.1 for a branch's head; no other git host.
            git_hosts=["file://", "127.0.0.1"],
            source_namespaces=["flux-shared"],
        ),
    ],
)


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


def delete_namespaced_objects(client: ApiClient, namespace: str) -> None:
    """Delete every custom object of ours in the namespace (finalizers dropped: nothing may hang a test)."""
    custom = CustomObjectsApi(client)
    for kind in ALL_KINDS:
        listing = custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, kind.plural)
        for item in listing.get("items", []):
            name = item["metadata"]["name"]
            if item["metadata"].get("finalizers"):
                custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, kind.plural, name,
                                                      {"metadata": {"finalizers": None}})
            with contextlib.suppress(ApiException):
                custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, kind.plural, name)
