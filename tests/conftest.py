"""The test harness: emulated Kubernetes API (kmock + our fidelity layer) with the project's
CRDs, an emulated AWS (moto server), and the operator running in-process against both.

Servers are session-scoped (starting them is the slow part); every test gets its own
namespace, so tests never see each other's objects.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator

import pytest
from kubernetes.client import ApiClient

from devops_operator.api.crdgen import render_all
from devops_operator.config import OperatorConfig
from devops_operator.kube import client as kube_client
from devops_operator.kube.client import CountingApiClient, new_api_client
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.aws import emulated_aws
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.jobs import DEPLOYMENT_LABEL

from support import TEST_POLICY, delete_namespaced_objects

_namespace_counter = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Anything that needs a server is an integration test (`make unit` skips them).
    for item in items:
        if {"kube_server", "aws_url", "operator"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker (`make test`)
        _slow_files_first(items)


def _slow_files_first(items: list[pytest.Item]) -> None:
    """The order `make test`'s workers are handed the files in (-n 2 --dist loadfile --no-loadscope-reorder).

    Each worker has session servers of its own (API server, moto, operator, kubelet double: free ports,
    per-worker temp dirs), so a file may run on either; a whole file runs on one worker, in file order, as
    without xdist, so module fixtures (a sandbox process its last test stops, a seeded estate) are made once.
    Files holding a `slow` test go first: they mostly wait (on whole CloudWatch minutes, on runner Jobs,
    on a sandbox process), so they overlap the quick files instead of being the tail of the run. The sort
    is stable, and every worker sorts the same collection the same way (xdist checks they agree).
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the emulated Kubernetes API or AWS")
    config.addinivalue_line("markers", "slow: starts processes of its own (a whole sandbox); a few seconds each")


@pytest.fixture(scope="session")
def kube_server() -> Iterator[EmulatedKubernetes]:
    """The emulated Kubernetes API with the project's CRDs registered, as `make crds` renders them."""
    with EmulatedKubernetes() as server:
        for crd in render_all().values():
            server.register_crd(crd)
        yield server


@pytest.fixture(scope="session")
def kube_api(kube_server: EmulatedKubernetes) -> ApiClient:
    kube_client.configure(host=kube_server.url)
    return kube_client.api_client()


@pytest.fixture(scope="session")
def kube_url(kube_server: EmulatedKubernetes) -> str:
    return kube_server.url


@pytest.fixture
def api(kube_url: str) -> Iterator[CountingApiClient]:
    """A client of the test's own (own connection pool and request counts), not the operator's."""
    client = new_api_client(kube_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def aws_url() -> Iterator[str]:
    """A moto server's URL; boto3 clients point at it through endpoint_url."""
    with emulated_aws() as url:
        yield url


@pytest.fixture(scope="session")
def operator_config(kube_server: EmulatedKubernetes, aws_url: str) -> OperatorConfig:
    return dataclasses.replace(
        OperatorConfig.from_env({}),
        kube_api_url=kube_server.url,
        aws_endpoint_url=aws_url,
        metrics_port=0,
        liveness_endpoint="",
        stalled_recheck_seconds=1.0,
        tenancy_policy=TEST_POLICY,
        # Manual approvals count in strict-* namespaces only while the approval admission policies are
        # installed (tests/test_approval_policies.py); read again every second.
        require_approval_policy=["strict-*"],
        approval_policy_recheck_seconds=1.0,
    )


@pytest.fixture(scope="session")
def operator(operator_config: OperatorConfig, kube_api: ApiClient) -> Iterator[OperatorThread]:
    """The real operator (kopf + our handlers) running in-process against the emulators."""
    with OperatorThread(operator_config) as running:
        yield running


@pytest.fixture(scope="session")
def kubelet(kube_server: EmulatedKubernetes, aws_url: str, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[KubeletDouble]:
    """The kubelet double: runs runner Jobs as subprocesses (the emulator has no nodes)."""
    state = tmp_path_factory.mktemp("kubelet")
    kubeconfig = kube_server.write_kubeconfig(state / "kubeconfig")
    # Only runner Jobs: other tests create Jobs of their own (kubectl create job) and expect them left alone.
    with KubeletDouble(kube_url=kube_server.url, kubeconfig=kubeconfig, log_dir=state, use_standin=True,
                       job_label=DEPLOYMENT_LABEL) as double:
        yield double


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace name per test (the emulator needs no Namespace object to use one).

    Afterwards the test's custom objects are deleted, so the operator stops working on them (its
    background rechecks would otherwise make AWS calls that later tests' exact counts would see).
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{next(_namespace_counter)}"
    yield name
    if "kube_server" in request.fixturenames or "operator" in request.fixturenames:
        server: EmulatedKubernetes = request.getfixturevalue("kube_server")
        client = new_api_client(server.url)
        try:
            delete_namespaced_objects(client, name)
        finally:
            client.close()


@pytest.fixture
def ns(namespace: str) -> str:
    """Short name of `namespace` for tests that use it on every line."""
    return namespace
