"""More of what can go wrong: an image that cannot be pulled, two deployments claiming one resource."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient

from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import QUEUE_MODULE, deployment, get, jobs, project, wait_phase
from support import wait_until

# End-to-end: the operator, runner Jobs as processes, the stand-in and moto (seconds per test).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_an_image_that_cannot_be_pulled_fails_the_job_with_its_reason(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    project(kube_api, namespace, test_runner={"image": "registry.invalid/runner:none"})
    kubelet.unpullable_images.add("registry.invalid/runner:none")
    deployment(kube_api, namespace, "pull")
    failed = wait_phase(kube_api, namespace, "pull", "Failed")["status"]
    assert failed["jobs"]["lastFailed"]["reason"] == "ImagePullBackOff"
    assert "spec.environments[].runner.image" in failed["message"]
    assert [j for j in jobs(kube_api, namespace) if "-apply-" in j] == []


def test_two_deployments_claiming_one_queue_conflict_on_both(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str
) -> None:
    project(kube_api, namespace)
    same = {"name": f"{namespace}-shared"[:60]}
    deployment(kube_api, namespace, "first", files=QUEUE_MODULE, variables=same, approval={"mode": "auto"})
    wait_phase(kube_api, namespace, "first", "Ready")
    deployment(kube_api, namespace, "second", files=QUEUE_MODULE, variables=same, approval={"mode": "auto"})
    second = wait_phase(kube_api, namespace, "second", "Ready")["status"]
    assert [c["deployment"] for c in second["registry"]["conflicts"]] == [f"{namespace}/first"]
    first = wait_until(lambda: (get(kube_api, namespace, "first").get("status") or {}).get("registry", {}).get(
        "conflicts"), what="the conflict on the first deployment too")
    assert [c["deployment"] for c in first] == [f"{namespace}/second"]


def test_a_flux_artifact_is_downloaded_verified_and_applied(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str,
    kube_server: object, tmp_path: object,
) -> None:
    import hashlib
    import http.server
    import io
    import tarfile
    import threading
    from pathlib import Path

    from kubernetes.client import CustomObjectsApi

    from test_infradeployment_bad_input import FLUX_CRD

    kube_server.register_crd(FLUX_CRD)  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = QUEUE_MODULE["main.tf"].encode()
        info = tarfile.TarInfo("queue/main.tf")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    artifact = buffer.getvalue()
    root = Path(str(tmp_path))
    (root / "artifact.tar.gz").write_bytes(artifact)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        custom = CustomObjectsApi(kube_api)
        custom.create_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", namespace, "gitrepositories", {
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "infra"},
            "spec": {"url": "https://example.invalid/infra.git"}})
        custom.patch_namespaced_custom_object_status("source.toolkit.fluxcd.io", "v1", namespace, "gitrepositories",
                                                     "infra", {"status": {"artifact": {
            "url": f"http://127.0.0.1:{server.server_port}/artifact.tar.gz", "revision": "main@sha1:abc123",
            "digest": f"sha256:{hashlib.sha256(artifact).hexdigest()}"}}})
        project(kube_api, namespace)
        deployment(kube_api, namespace, "flux", approval={"mode": "auto"},
                   source={"sourceRef": {"kind": "GitRepository", "name": "infra", "path": "queue"}})
        ready = wait_phase(kube_api, namespace, "flux", "Ready", "Failed", "Stalled")["status"]
    finally:
        server.shutdown()
    assert ready["phase"] == "Ready", ready["message"]
    assert ready["lastAppliedRevision"] == "main@sha1:abc123"
