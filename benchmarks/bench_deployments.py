"""N InfraDeployments created at once against the emulator, their plans run by the kubelet double and the
stand-in Terraform: wall time until all are AwaitingApproval, and Kubernetes requests per object."""

from __future__ import annotations

import time
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from kubernetes.client import CustomObjectsApi

from benchmarks.harness import Timer, max_rss_mib, scaled, stack
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.kube import client as kube_client
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.runner import waiting_for_approval

MODULE = 'variable "name" {\n  type = string\n}\nresource "aws_sqs_queue" "q" {\n  name = var.name\n}\n'


def project(namespace: str) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject",
            "metadata": {"name": "shop", "namespace": namespace},
            "spec": {"environments": [{"name": "prod", "production": True,
                                       "runner": {"planCredentials": {"source": "ambient"}}}]}}


def project_ready(custom: CustomObjectsApi, namespace: str) -> bool:
    found = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", "shop")
    conditions = (found.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def deployment(index: int) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "InfraDeployment",
            "metadata": {"name": f"deploy-{index:04d}"},
            "spec": {"projectRef": {"name": "shop"}, "environment": "prod", "source": {"inline": {"main.tf": MODULE}},
                     "variables": {"name": f"bench-queue-{index:04d}"}}}


def run_one(count: int, namespace: str, timeout: float = 1200.0) -> dict[str, Any]:
    with stack() as running:
        operator_client = kube_client.api_client()  # the operator's own (shared) client counts its requests
        custom = CustomObjectsApi(kube_client.new_api_client(running.kube.url))
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects",
                                               project(namespace))
        while not project_ready(custom, namespace):
            time.sleep(0.1)
        state = Path(mkdtemp(prefix="bench-kubelet-"))
        kubeconfig = running.kube.write_kubeconfig(state / "kubeconfig")
        with KubeletDouble(kube_url=running.kube.url, kubeconfig=kubeconfig, log_dir=state, use_standin=True):
            before = operator_client.requests_made()
            with Timer() as timer:
                for index in range(count):
                    custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                           deployment(index))
                deadline = time.monotonic() + timeout
                while True:
                    items = custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                 "infradeployments")["items"]
                    waiting = sum(1 for item in items if waiting_for_approval(item))
                    if waiting == count or time.monotonic() > deadline:
                        break
                    time.sleep(0.25)
            # Requests by the operator's own client (kopf's watches and patches, the benchmark's polls and the
            # kubelet double's are not counted): per object.
            operator_requests = operator_client.requests_made() - before
        if waiting != count:
            raise RuntimeError(f"only {waiting} of {count} deployments reached AwaitingApproval in {timeout:.0f}s")
        return {
            "deployments": count,
            "seconds_until_all_awaiting_approval": round(timer.seconds, 2),
            "kube_requests_by_operator_client": operator_requests,
            "kube_requests_per_deployment": round(operator_requests / count, 2),
            "max_rss_mib": round(max_rss_mib(), 1),
        }


SIZES = (100,)


def run(scale: float = 1.0) -> dict[str, Any]:
    counts = sorted({scaled(size, scale) for size in SIZES})
    return {"runs": [run_one(count, f"bench-deploy-{count}") for count in counts]}
