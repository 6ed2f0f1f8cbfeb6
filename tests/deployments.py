"""Helpers for InfraDeployment tests: a project, small modules, a deployment, waiting for phases."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.kube.client import call_json

from support import get_custom, wait_until

QUEUE_MODULE = {
    "main.tf": """
variable "name" {
  type = string
}
resource "aws_sqs_queue" "jobs" {
  name = "${var.name}-jobs"
  tags = { team = "payments" }
}
output "queue_url" {
  value = aws_sqs_queue.jobs.url
}
""",
}


def project(api: ApiClient, namespace: str, name: str = "shop", *, production: bool = False,
            auto_approve: bool = True, test_runner: dict[str, Any] | None = None,
            prod_runner: dict[str, Any] | None = None, terraform: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"project": name, **({"terraform": terraform} if terraform else {}), "environments": [
            {"name": "test", "autoApprove": auto_approve, "credentials": {"source": "ambient"},
             **({"runner": test_runner} if test_runner else {})},
            {"name": "prod", "production": production or True, "autoApprove": False,
             "credentials": {"source": "ambient"}, "runner": prod_runner or {"planCredentials": {"source": "ambient"}}},
        ]},
    }
    created = CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                   "devopsprojects", body)
    wait_until(lambda: _ready(api, namespace, "devopsprojects", name), timeout=30, what=f"project {name} Ready")
    return dict(created)


def _ready(api: ApiClient, namespace: str, plural: str, name: str) -> bool:
    obj = get_custom(api, plural, namespace, name)
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def deployment(api: ApiClient, namespace: str, name: str, *, environment: str = "test",
               files: dict[str, str] | None = None, variables: dict[str, Any] | None = None,
               approval: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "InfraDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"projectRef": {"name": "shop"}, "environment": environment,
                 "source": spec.pop("source", None) or {"inline": files or QUEUE_MODULE},
                 "variables": variables if variables is not None else {"name": f"{namespace}-{name}"[:60]},
                 **({"approval": approval} if approval else {}), **spec},
    }
    created = CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                   "infradeployments", body)
    return dict(created)


def state_of(api: ApiClient, namespace: str, secret: str) -> dict[str, Any] | None:
    """The Terraform state the Kubernetes backend keeps in Secret `secret` (gzip'd JSON), or None if absent."""
    try:
        found = call_json(api, "GET", f"/api/v1/namespaces/{namespace}/secrets/{secret}")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    state: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(found["data"]["tfstate"])))
    return state


def get(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return get_custom(api, "infradeployments", namespace, name)


def wait_phase(api: ApiClient, namespace: str, name: str, *phases: str, timeout: float = 180) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(api, namespace, name)
        status = obj.get("status") or {}
        if status.get("phase") in phases and status.get("observedGeneration") == obj["metadata"].get("generation"):
            return obj
        return None
    return wait_until(check, timeout=timeout, interval=0.2, what=f"{name} in {phases}")


def patch_spec(api: ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    CustomObjectsApi(api).patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                         name, {"spec": spec})


def jobs(api: ApiClient, namespace: str) -> list[str]:
    from devops_operator.kube.client import call_json
    listing = call_json(api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")
    return sorted(item["metadata"]["name"] for item in listing.get("items") or [])


def approve(api: ApiClient, namespace: str, name: str, plan_id: str, who: str = "alice") -> None:
    patch_spec(api, namespace, name, {"approval": {"planId": plan_id, "approvedBy": who}})
