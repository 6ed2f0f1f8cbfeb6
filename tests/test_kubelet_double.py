"""The kubelet double honours pod deletion as a kubelet does, and plays the Job controller's part.

`kubectl delete pod` (a node drain, an eviction, a person): the pod gets deletionTimestamp, the container's
main process SIGTERM, every process of it SIGKILL once the grace period is over, the pod object goes once
the processes are gone; the Job counts the deleted pod as failed (no podFailurePolicy), replaces it while
backoffLimit allows, else is FailureTarget at once and Failed once no pod of it is left running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import call_json
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.kubelet import KubeletDouble

from support import wait_until

# Says when it got SIGTERM, then takes `linger` seconds to stop (or never, with `ignore`).
TRAPS_TERM = """
import signal, subprocess, sys, time
linger, ignore, child_mark = float(sys.argv[1]), sys.argv[2] == "ignore", sys.argv[3]
def term(signum, frame):
    print("got SIGTERM", flush=True)
    if not ignore:
        time.sleep(linger)
        print("stopped cleanly", flush=True)
        sys.exit(3)
signal.signal(signal.SIGTERM, term)
if child_mark != "-":  # a second process in the container: it must not outlive it
    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(4); open({child_mark!r}, 'w').write('x')"])
print("started", flush=True)
for _ in range(600):
    time.sleep(0.1)
print("finished", flush=True)
"""


@pytest.fixture
def node(kube_server: EmulatedKubernetes, tmp_path: Path, namespace: str) -> Iterator[KubeletDouble]:
    kubeconfig = kube_server.write_kubeconfig(tmp_path / "kubeconfig")
    with KubeletDouble(kube_url=kube_server.url, kubeconfig=kubeconfig, log_dir=tmp_path, use_standin=True,
                       namespaces={namespace}, backoff_seconds=0.2) as double:
        yield double


def job(api: ApiClient, namespace: str, name: str, *args: str, backoff_limit: int = 0, grace: int = 30,
        script: str = TRAPS_TERM) -> None:
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": grace,
                "containers": [{"name": "runner", "image": "runner:test",
                                "command": ["python", "-c", script, *args]}]}}}}
    call_json(api, "POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=body)


def running_pod(api: ApiClient, node: KubeletDouble, namespace: str, name: str) -> str:
    def started() -> str | None:
        pod = node.pod_of(namespace, name)
        return pod if pod and "started" in node.pod_log(namespace, pod) else None
    return wait_until(started, timeout=30, what=f"a running pod of {name}")


def pod(api: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = call_json(api, "GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        return found
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def job_status(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found = call_json(api, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
    return dict(found.get("status") or {})


def conditions(status: dict[str, Any]) -> dict[str, str | None]:
    return {c["type"]: c.get("reason") for c in status.get("conditions") or []}


def test_deleting_a_pod_sends_sigterm_and_the_pod_stays_until_its_container_stopped(
    kube_server: EmulatedKubernetes, api: ApiClient, node: KubeletDouble, namespace: str
) -> None:
    job(api, namespace, "graceful", "1.5", "exit", "-")
    name = running_pod(api, node, namespace, "graceful")
    call_json(api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
    wait_until(lambda: "got SIGTERM" in node.pod_log(namespace, name), timeout=10, what="SIGTERM delivered")
    terminating = pod(api, namespace, name)
    assert terminating is not None and terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    # The Job counts the deleted pod as failed at once; with backoffLimit 0 that is FailureTarget, not yet Failed.
    status = wait_until(lambda: (s := job_status(api, namespace, "graceful")).get("failed") == 1 and s, timeout=10,
                        what="the pod counted failed")
    assert conditions(status) == {"FailureTarget": "BackoffLimitExceeded"}
    assert (status["terminating"], status["active"]) == (1, 0)
    wait_until(lambda: pod(api, namespace, name) is None, timeout=20, what="the pod removed once stopped")
    assert "stopped cleanly" in node.pod_log(namespace, name)  # it had its grace period to stop
    final = job_status(api, namespace, "graceful")
    assert conditions(final) == {"FailureTarget": "BackoffLimitExceeded", "Failed": "BackoffLimitExceeded"}
    assert (final["failed"], final["terminating"], final["active"]) == (1, 0, 0)


def test_a_container_still_running_after_the_grace_period_is_killed_with_all_its_processes(
    kube_server: EmulatedKubernetes, api: ApiClient, node: KubeletDouble, namespace: str, tmp_path: Path
) -> None:
    mark = tmp_path / "child-survived"
    job(api, namespace, "stubborn", "0", "ignore", str(mark), grace=2)
    name = running_pod(api, node, namespace, "stubborn")
    deleted_at = time.monotonic()
    call_json(api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
    wait_until(lambda: pod(api, namespace, name) is None, timeout=20, what="the pod removed after SIGKILL")
    assert time.monotonic() - deleted_at >= 2  # not before the grace period was over
    log = node.pod_log(namespace, name)
    assert "got SIGTERM" in log and "finished" not in log
    time.sleep(4.5)
    assert not mark.exists()  # the container's second process was killed with it
    assert conditions(job_status(api, namespace, "stubborn"))["Failed"] == "BackoffLimitExceeded"


def test_a_deleted_pod_is_replaced_while_the_backoff_limit_allows(
    kube_server: EmulatedKubernetes, api: ApiClient, node: KubeletDouble, namespace: str
) -> None:
    job(api, namespace, "retried", "0.2", "exit", "-", backoff_limit=1)
    first = running_pod(api, node, namespace, "retried")
    call_json(api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{first}")
    second = wait_until(lambda: (p := node.pod_of(namespace, "retried")) and p != first and p, timeout=20,
                        what="a replacement pod")
    status = job_status(api, namespace, "retried")
    assert status["failed"] == 1 and "Failed" not in conditions(status) and "FailureTarget" not in conditions(status)
    call_json(api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{second}")  # the second failure is one too many
    failed = wait_until(lambda: "Failed" in conditions(s := job_status(api, namespace, "retried")) and s, timeout=20,
                        what="the Job failed")
    assert failed["failed"] == 2 and conditions(failed)["Failed"] == "BackoffLimitExceeded"
    assert [p for p in node.started_pods if p.startswith("retried-")] == [first, second]
    assert "got SIGTERM" in node.log(namespace, "retried")


def test_deleting_the_job_terminates_its_pods_gracefully(
    kube_server: EmulatedKubernetes, api: ApiClient, node: KubeletDouble, namespace: str
) -> None:
    job(api, namespace, "dropped", "0.2", "exit", "-")
    name = running_pod(api, node, namespace, "dropped")
    call_json(api, "DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/dropped",
              body={"propagationPolicy": "Background"})
    wait_until(lambda: pod(api, namespace, name) is None, timeout=20, what="the pod removed")
    assert "stopped cleanly" in node.pod_log(namespace, name)
    assert not node.running(namespace, "dropped")
