"""projectRef resolution, the one check every kind that names a DevOpsProject goes through,
against the emulated API (real project objects, Namespace labels) and moto (real verification)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.config import OperatorConfig
from devops_operator.controllers.devopsproject import evaluate
from devops_operator.projectrefs import (
    ENVIRONMENT_NOT_FOUND,
    POLICY_DENIED,
    PROJECT_NOT_FOUND,
    PROJECT_NOT_READY,
    ProjectRefError,
    resolve_project,
)
from devops_operator.runtime import Runtime

from support import TEST_POLICY


@pytest.fixture
def runtime(kube_api: ApiClient, aws_url: str) -> Runtime:
    config = dataclasses.replace(OperatorConfig.from_env({}), aws_endpoint_url=aws_url, tenancy_policy=TEST_POLICY)
    return Runtime.build(config, kube_api)


def make_project(api: ApiClient, runtime: Runtime, namespace: str, name: str, **spec: Any) -> None:
    body = {"environments": [{"name": "test"}, {"name": "prod", "production": True}], **spec}
    CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": name},
        "spec": body,
    })
    outcome = evaluate(name, namespace, body, runtime)  # what the controller does: admit, verify
    assert outcome.state == "ready", outcome.message


def refused(runtime: Runtime, namespace: str, ref: dict[str, str], environment: str = "test") -> ProjectRefError:
    with pytest.raises(ProjectRefError) as caught:
        resolve_project(runtime, namespace, ref, environment)
    return caught.value


def test_same_namespace_reference_resolves(kube_api: ApiClient, runtime: Runtime, namespace: str) -> None:
    make_project(kube_api, runtime, namespace, "shop")
    access = resolve_project(runtime, namespace, {"name": "shop"}, "prod")
    assert (access.key, access.environment.name, access.production) == (f"{namespace}/shop", "prod", True)
    # And its sessions are handed out: the project is verified.
    runtime.aws.client(access.key, "prod", "s3").list_buckets()


def test_cross_namespace_reference_needs_the_projects_grant(
    kube_api: ApiClient, runtime: Runtime, namespace: str
) -> None:
    make_project(kube_api, runtime, namespace, "shop", allowedNamespaces=[f"{namespace}-web*"])
    ref = {"name": "shop", "namespace": namespace}

    denied = refused(runtime, f"{namespace}-intruder", ref)
    assert (denied.reason, denied.field, denied.waiting) == (POLICY_DENIED, "spec.projectRef.namespace", True)
    assert f"does not grant namespace '{namespace}-intruder'" in str(denied)

    assert resolve_project(runtime, f"{namespace}-web-frontend", ref, "test").key == f"{namespace}/shop"


def test_a_grant_by_namespace_labels(kube_api: ApiClient, runtime: Runtime, namespace: str) -> None:
    make_project(kube_api, runtime, namespace, "shop", allowedNamespaceSelector={"matchLabels": {"shop": "client"}})
    CoreV1Api(kube_api).create_namespace({"metadata": {"name": f"{namespace}-c", "labels": {"shop": "client"}}})
    CoreV1Api(kube_api).create_namespace({"metadata": {"name": f"{namespace}-x", "labels": {"shop": "other"}}})
    ref = {"name": "shop", "namespace": namespace}
    assert resolve_project(runtime, f"{namespace}-c", ref, "test").name == "shop"
    assert refused(runtime, f"{namespace}-x", ref).reason == POLICY_DENIED


def test_missing_unready_and_unknown_environment(kube_api: ApiClient, runtime: Runtime, namespace: str) -> None:
    missing = refused(runtime, namespace, {"name": "nope"})
    assert (missing.reason, missing.waiting) == (PROJECT_NOT_FOUND, True)
    assert f"DevOpsProject {namespace}/nope does not exist" in str(missing)

    # A project the operator has not admitted (here: the tenancy policy refuses it) is not Ready.
    CustomObjectsApi(kube_api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "pending"},
        "spec": {"environments": [{"name": "test"}]},
    })
    pending = refused(runtime, namespace, {"name": "pending"})
    assert (pending.reason, pending.waiting) == (PROJECT_NOT_READY, True)

    make_project(kube_api, runtime, namespace, "shop")
    unknown = refused(runtime, namespace, {"name": "shop"}, environment="staging")
    assert (unknown.reason, unknown.field, unknown.waiting) == (ENVIRONMENT_NOT_FOUND, "spec.environment", False)
    assert "(defined: test, prod)" in str(unknown)


def test_an_ungranted_namespace_learns_nothing_of_an_unready_project(
    kube_api: ApiClient, runtime: Runtime, namespace: str
) -> None:
    CustomObjectsApi(kube_api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "secretive"},
        "spec": {"environments": [{"name": "test"}]},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Internal", "message": "details"}]},
    })
    denied = refused(runtime, f"{namespace}-other", {"name": "secretive", "namespace": namespace})
    assert denied.reason == POLICY_DENIED and "details" not in str(denied)
