"""The remediation log: one ConfigMap per project, bounded and rotated, every entry kept under concurrent
writers, each remediation logged once however often its end is retried."""

from __future__ import annotations

import json
import threading
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.kube.client import CountingApiClient, new_api_client
from devops_operator.ops.remediation import log as remediation_log


def entry(uid: str, outcome: str = "Succeeded") -> dict[str, Any]:
    return {"uid": uid, "namespace": "team", "name": f"rem-{uid}", "environment": "prod", "target": "lambda/api",
            "action": "restart", "outcome": outcome, "completedAt": "2025-03-01T14:00:00Z",
            "reason": "token=abcdef0123456789abcdef0123456789 in the logs"}


def test_concurrent_writers_lose_nothing_and_a_retry_logs_once(kube_url: str, api: CountingApiClient,
                                                              ns: str) -> None:
    writers = [new_api_client(kube_url) for _ in range(4)]

    def write(client: ApiClient, index: int) -> None:
        log = remediation_log.remediation_log(client, ns, "shop", None)
        for n in range(10):
            remediation_log.append(log, entry(f"{index}-{n}"))
            remediation_log.append(log, entry(f"{index}-{n}", "RolledBack"))  # the same end, retried

    threads = [threading.Thread(target=write, args=(client, i)) for i, client in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in writers:
        client.close()

    entries = remediation_log.read_entries(api, ns, "shop")
    assert sorted(e["uid"] for e in entries) == sorted(f"{i}-{n}" for i in range(4) for n in range(10))
    assert {e["outcome"] for e in entries} == {"Succeeded"}  # the first end logged wins
    configmap = CoreV1Api(api).read_namespaced_config_map("shop-remediation-log", ns)
    assert "abcdef0123456789abcdef0123456789" not in json.dumps(configmap.data)  # redacted
    assert configmap.data["REMEDIATIONS.md"].startswith("# Remediation log\n\n40 remediation(s) here, 0 older")
    assert configmap.metadata.labels["devops.fractary.io/log"] == "remediation"


def test_the_log_is_bounded_and_counts_what_it_rotated_out(api: CountingApiClient, ns: str) -> None:
    log = remediation_log.remediation_log(api, ns, "shop", None)
    log.max_entries = 5
    for n in range(8):
        remediation_log.append(log, entry(str(n)))
    document = log.read()
    assert [e["uid"] for e in document["entries"]] == ["3", "4", "5", "6", "7"] and document["rotated"] == 3
