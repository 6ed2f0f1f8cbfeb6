"""The runtime's record of admitted and verified projects: what the AWS factory may hand out."""

from __future__ import annotations

import dataclasses

import pytest
from kubernetes.client import ApiClient

from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.aws.errors import ProjectNotVerifiedError
from devops_operator.config import OperatorConfig
from devops_operator.runtime import Runtime


def spec(**aws: str) -> DevOpsProjectSpec:
    return DevOpsProjectSpec.model_validate({"aws": {"region": "eu-west-1", **aws}, "environments": [{"name": "test"}]})


def test_a_fresh_runtime_knows_no_project_until_one_is_admitted(kube_api: ApiClient, aws_url: str) -> None:
    runtime = Runtime.build(dataclasses.replace(OperatorConfig.from_env({}), aws_endpoint_url=aws_url), kube_api)
    key = "team/restarted"  # as right after an operator restart: nothing admitted yet, nothing read from the API
    assert runtime.project_aws_config(key) is None

    runtime.admit_project(key, spec())
    resolved = runtime.project_aws_config(key)
    assert resolved is not None and not resolved.verified
    assert resolved.aws.endpoint_url == aws_url and resolved.aws.region == "eu-west-1"
    # Admitted but not verified: the identity check may run, work may not.
    assert runtime.aws.caller_identity(key, "test").account == "123456789012"
    with pytest.raises(ProjectNotVerifiedError):
        runtime.aws.client(key, "test", "s3")

    runtime.mark_verified(key, True)
    assert runtime.project_aws_config(key).verified  # type: ignore[union-attr]
    runtime.aws.client(key, "test", "s3").list_buckets()

    runtime.auth_failed(key)  # an expired key on some call: unverified again, and asked to re-verify
    assert not runtime.is_verified(key) and runtime.needs_reverification(key)
    runtime.forget_project(key)
    assert runtime.project_aws_config(key) is None


def test_an_explicit_endpoint_is_never_overridden(kube_api: ApiClient, aws_url: str) -> None:
    runtime = Runtime.build(dataclasses.replace(OperatorConfig.from_env({}), aws_endpoint_url=aws_url), kube_api)
    runtime.admit_project("team/own", spec(endpointUrl="http://localstack:4566"))
    resolved = runtime.project_aws_config("team/own")
    assert resolved is not None and resolved.aws.endpoint_url == "http://localstack:4566"


def test_secret_versions_are_tracked_for_every_secret_and_name_their_projects(kube_api: ApiClient) -> None:
    runtime = Runtime.build(OperatorConfig.from_env({}), kube_api)
    keyed = DevOpsProjectSpec.model_validate({"environments": [
        {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "keys"}}}]})
    assert runtime.secret_seen("team", "keys", "5") == []  # seen before any project uses it
    runtime.admit_project("team/shop", keyed)
    assert runtime.secret_version("team", "keys") == "5"
    assert runtime.secret_seen("team", "keys", "6") == ["team/shop"]
    assert runtime.secret_seen("team", "keys", None) == ["team/shop"]  # deleted
    assert runtime.secret_version("team", "keys") is None
