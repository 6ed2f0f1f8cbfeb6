"""The runtime's project resolver: what the AWS factory sees right after an operator restart."""

from __future__ import annotations

import dataclasses

from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.config import OperatorConfig
from devops_operator.runtime import Runtime


def test_a_fresh_runtime_reads_projects_from_the_api_with_the_default_endpoint(
    kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    CustomObjectsApi(kube_api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "restarted"},
        "spec": {"aws": {"region": "eu-west-1"}, "environments": [{"name": "test"}]},
    })
    config = dataclasses.replace(OperatorConfig.from_env({}), aws_endpoint_url=aws_url)
    runtime = Runtime.build(config, kube_api)  # nothing remembered: as after a restart

    resolved = runtime.project_aws_config(f"{namespace}/restarted")
    assert resolved is not None
    assert resolved.aws.endpoint_url == aws_url and resolved.aws.region == "eu-west-1"
    assert runtime.project_aws_config(f"{namespace}/absent") is None
    # And the factory built on it reaches the emulated AWS.
    who = runtime.aws.caller_identity(f"{namespace}/restarted", "test")
    assert who.account == "123456789012"


def test_an_explicit_endpoint_is_never_overridden(kube_api: ApiClient, aws_url: str, namespace: str) -> None:
    CustomObjectsApi(kube_api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": "own"},
        "spec": {"aws": {"endpointUrl": "http://localstack:4566"}, "environments": [{"name": "test"}]},
    })
    runtime = Runtime.build(dataclasses.replace(OperatorConfig.from_env({}), aws_endpoint_url=aws_url), kube_api)
    resolved = runtime.project_aws_config(f"{namespace}/own")
    assert resolved is not None and resolved.aws.endpoint_url == "http://localstack:4566"
