"""Bad input to an InfraDeployment: Stalled (or a quiet wait) naming the field and the fix, nothing applied."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import QUEUE_MODULE, deployment, get, jobs, project, wait_phase
from support import wait_until

FLUX_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gitrepositories.source.toolkit.fluxcd.io"},
    "spec": {"group": "source.toolkit.fluxcd.io", "scope": "Namespaced",
             "names": {"kind": "GitRepository", "plural": "gitrepositories", "singular": "gitrepository",
                       "listKind": "GitRepositoryList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}

# End-to-end: the operator, runner Jobs as processes, the stand-in and moto (seconds per test).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def stalled(api: ApiClient, namespace: str, name: str) -> dict:
    return wait_phase(api, namespace, name, "Stalled", "Failed")["status"]


@pytest.fixture
def shop(operator: OperatorThread, kube_api: ApiClient, namespace: str) -> str:
    project(kube_api, namespace)
    return namespace


def test_a_missing_configmap_source_stalls_before_any_job(shop: str, kube_api: ApiClient) -> None:
    deployment(kube_api, shop, "nocm", source={"configMapRef": {"name": "absent"}})
    status = stalled(kube_api, shop, "nocm")
    assert {c["reason"] for c in status["conditions"] if c["type"] == "Stalled"} == {"SourceNotFound"}
    assert status["message"].startswith("spec.source.configMapRef.name: ConfigMap")
    assert "create it" in status["message"] and jobs(kube_api, shop) == []


def test_no_source_at_all_is_refused_by_the_api(shop: str, kube_api: ApiClient) -> None:
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "InfraDeployment", "metadata": {"name": "nosrc"},
            "spec": {"projectRef": {"name": "shop"}, "environment": "test", "source": {}}}
    with pytest.raises(ApiException) as refused:
        CustomObjectsApi(kube_api).create_namespaced_custom_object(API_GROUP, API_VERSION, shop, "infradeployments",
                                                                   body)
    assert "exactly one of git, configMapRef, inline or sourceRef" in refused.value.body


def test_an_unknown_project_waits_quietly_and_says_so(operator: OperatorThread, kube_api: ApiClient,
                                                      namespace: str) -> None:
    deployment(kube_api, namespace, "orphan")
    status = wait_phase(kube_api, namespace, "orphan", "Pending")["status"]
    assert "spec.projectRef: DevOpsProject" in status["message"] and "does not exist" in status["message"]
    assert jobs(kube_api, namespace) == []


def test_a_deployment_waiting_for_a_project_is_looked_at_again_without_rewriting_its_status(
        operator: OperatorThread, kube_api: ApiClient, namespace: str) -> None:
    from prometheus_client import REGISTRY

    def looks() -> float:
        labels = {"kind": "InfraDeployment", "outcome": "retry"}
        return REGISTRY.get_sample_value("devops_operator_reconcile_total", labels) or 0.0

    deployment(kube_api, namespace, "orphan", source={"configMapRef": {"name": "absent"}})
    first = wait_phase(kube_api, namespace, "orphan", "Pending")
    before = looks()
    wait_until(lambda: looks() >= before + 2, timeout=30, what="two more looks at the waiting deployment")
    # Still the same wait: nothing written (no status churn for every watch and GitOps tool).
    assert get(kube_api, namespace, "orphan")["status"]["lastReconciled"] == first["status"]["lastReconciled"]
    # Once the project exists (and is Ready), a later look finds it, and the next thing it waits for.
    project(kube_api, namespace)
    assert {c["reason"] for c in stalled(kube_api, namespace, "orphan")["conditions"]
            if c["type"] == "Stalled"} == {"SourceNotFound"}
    assert jobs(kube_api, namespace) == []


def test_an_unknown_environment_is_stalled(shop: str, kube_api: ApiClient) -> None:
    deployment(kube_api, shop, "noenv", environment="staging")
    status = stalled(kube_api, shop, "noenv")
    assert status["message"].startswith("spec.environment: 'staging' is not an environment")


def test_unreadable_git_credentials_are_stalled(shop: str, kube_api: ApiClient) -> None:
    CoreV1Api(kube_api).create_namespaced_secret(shop, {"metadata": {"name": "git-creds"},
                                                        "stringData": {"token": "x"}})
    deployment(kube_api, shop, "badgit", source={"git": {"url": "https://example.invalid/repo.git",
                                                         "credentialsSecretRef": {"name": "git-creds"}}})
    status = stalled(kube_api, shop, "badgit")
    assert status["message"].startswith("spec.source.git.credentialsSecretRef.name: Secret")
    assert "username and password" in status["message"] and jobs(kube_api, shop) == []


def test_a_var_file_that_does_not_exist_fails_the_plan_naming_it(shop: str, kube_api: ApiClient,
                                                                  kubelet: KubeletDouble) -> None:
    deployment(kube_api, shop, "novars", varFiles=["env/test.tfvars"])
    status = stalled(kube_api, shop, "novars")
    assert "spec.varFiles[0]" in status["message"] and "env/test.tfvars" in status["message"]
    assert [j for j in jobs(kube_api, shop) if "-apply-" in j] == []


def test_a_module_the_standin_cannot_run_names_the_construct(shop: str, kube_api: ApiClient,
                                                              kubelet: KubeletDouble) -> None:
    files = {"main.tf": 'resource "aws_sqs_queue" "q" {\n  count = 2\n  name = "x"\n}\n'}
    deployment(kube_api, shop, "counted", files=files, approval={"mode": "auto"})
    status = stalled(kube_api, shop, "counted")
    assert "count" in status["message"] and "install terraform or tofu" in status["message"]
    assert status["jobs"]["lastFailed"]["logSecret"].endswith("-result")
    assert [j for j in jobs(kube_api, shop) if "-apply-" in j] == []


def test_a_flux_source_without_an_artifact_is_stalled(shop: str, kube_api: ApiClient,
                                                      kube_server: EmulatedKubernetes) -> None:
    kube_server.register_crd(FLUX_CRD)
    CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "source.toolkit.fluxcd.io", "v1", shop, "gitrepositories",
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "infra"},
         "spec": {"url": "https://example.invalid/infra.git"}})
    deployment(kube_api, shop, "flux", source={"sourceRef": {"kind": "GitRepository", "name": "infra"}})
    status = stalled(kube_api, shop, "flux")
    assert status["message"].startswith("spec.source.sourceRef: Flux GitRepository")
    assert "no artifact" in status["message"]


def test_a_git_source_is_cloned_at_the_commit_and_applied(shop: str, kube_api: ApiClient, kubelet: KubeletDouble,
                                                          tmp_path: Path) -> None:
    repo = tmp_path / "infra"
    (repo / "queue").mkdir(parents=True)
    (repo / "queue" / "main.tf").write_text(QUEUE_MODULE["main.tf"])
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "queue"], check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    deployment(kube_api, shop, "fromgit", approval={"mode": "auto"},
               source={"git": {"url": f"file://{repo}", "ref": {"branch": "main"}, "path": "queue"}})
    ready = wait_phase(kube_api, shop, "fromgit", "Ready", "Failed", "Stalled")
    assert ready["status"]["phase"] == "Ready", ready["status"]["message"]
    assert ready["status"]["lastAppliedRevision"] == commit
    assert get(kube_api, shop, "fromgit")["status"]["plan"]["sourceRevision"] == commit


def test_an_engine_that_does_not_satisfy_terraform_version_is_stalled(shop: str, kube_api: ApiClient,
                                                                       kubelet: KubeletDouble) -> None:
    deployment(kube_api, shop, "oldtf", terraformVersion=">= 2.0")
    status = stalled(kube_api, shop, "oldtf")
    assert "spec.terraformVersion" in status["message"] and "does not satisfy '>= 2.0'" in status["message"]


def _flux_source(api: ApiClient, namespace: str, name: str) -> None:
    CustomObjectsApi(api).create_namespaced_custom_object(
        "source.toolkit.fluxcd.io", "v1", namespace, "gitrepositories",
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": name},
         "spec": {"url": "https://example.invalid/infra.git"},
         "status": {"artifact": {"url": "http://source-controller/infra.tar.gz", "digest": "sha256:00",
                                 "revision": "main@sha1:abc"}}})


def test_a_flux_source_in_another_namespace_is_refused_before_it_is_read_and_says_nothing_of_it(
    shop: str, kube_api: ApiClient, kube_server: EmulatedKubernetes,
) -> None:
    """Flux's --no-cross-namespace-refs: a source of another tenant's namespace is not read, whether it exists
    or not (the same message both times), and the deployment is Stalled (PolicyDenied) with no Job."""
    kube_server.register_crd(FLUX_CRD)
    other = f"{shop}-other"[:63]
    _flux_source(kube_api, other, "infra")
    deployment(kube_api, shop, "steal", source={"sourceRef": {"kind": "GitRepository", "name": "infra",
                                                              "namespace": other}})
    deployment(kube_api, shop, "probe", source={"sourceRef": {"kind": "GitRepository", "name": "absent",
                                                              "namespace": other}})
    exists, absent = stalled(kube_api, shop, "steal"), stalled(kube_api, shop, "probe")
    for status in (exists, absent):
        ready = next(c for c in status["conditions"] if c["type"] == "Stalled")
        assert ready["reason"] == "PolicyDenied"
        assert status["message"].startswith("spec.source.sourceRef.namespace: Flux sources of namespace")
        assert "sourceNamespaces" in status["message"]
    assert exists["message"] == absent["message"]  # no existence oracle
    assert "artifact" not in exists["message"] and "does not exist" not in absent["message"]
    read = [r for r in kube_server.emulator.requests if f"/namespaces/{other}/gitrepositories" in str(r.url)
            and r.method.upper() == "GET"]
    assert read == [], "the other namespace's source was read"
    assert jobs(kube_api, shop) == []


def test_a_flux_source_of_a_namespace_the_policy_allows_is_used(
    shop: str, kube_api: ApiClient, kube_server: EmulatedKubernetes,
) -> None:
    """support.TEST_POLICY's rule lets every test namespace name sources of `flux-shared`: it is read (and here
    refused for its digest only when the runner downloads it, so the spec passes the operator's checks)."""
    kube_server.register_crd(FLUX_CRD)
    CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "source.toolkit.fluxcd.io", "v1", "flux-shared", "gitrepositories",
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": f"{shop}-src"[:63]}, "spec": {"url": "https://example.invalid/infra.git"}})
    deployment(kube_api, shop, "shared", source={"sourceRef": {"kind": "GitRepository", "name": f"{shop}-src"[:63],
                                                               "namespace": "flux-shared"}})
    status = stalled(kube_api, shop, "shared")
    assert status["message"].startswith("spec.source.sourceRef: Flux GitRepository flux-shared/")
    assert "no artifact" in status["message"]  # it was read: the policy allows that namespace
