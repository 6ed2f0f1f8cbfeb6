"""Table rows of built-in kinds read as kube-apiserver 1.33 prints them (pure functions, no server)."""

from __future__ import annotations

import datetime

from devops_operator.sandbox.apiserver.printers import EVENT, JOB, POD

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def ago(minutes: int) -> str:
    return (NOW - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_finished_job_shows_complete_and_how_long_it_took() -> None:
    job = {"metadata": {"name": "apply", "creationTimestamp": ago(30)},
           "spec": {"completions": 1, "selector": {"matchLabels": {"job-name": "apply"}},
                    "template": {"spec": {"containers": [{"name": "tf", "image": "runner:1"}]}}},
           "status": {"succeeded": 1, "startTime": ago(20), "completionTime": ago(15),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    assert JOB.cells(job, NOW) == ["apply", "Complete", "1/1", "5m", "30m", "tf", "runner:1", "job-name=apply"]
    failed = {**job, "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}}
    assert JOB.cells(failed, NOW)[1:4] == ["Failed", "0/1", ""]
    parallel = {"metadata": {"name": "p"}, "spec": {"parallelism": 3}, "status": {"succeeded": 1}}
    assert JOB.cells(parallel, NOW)[1:3] == ["Running", "1/1 of 3"]


def test_pods_show_init_progress_restarts_and_termination() -> None:
    pod = {"metadata": {"name": "p", "creationTimestamp": ago(10)},
           "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}],
                    "nodeName": "node-1"},
           "status": {"phase": "Pending", "podIP": "10.0.0.5", "initContainerStatuses": [
               {"name": "a", "state": {"terminated": {"exitCode": 0}}},
               {"name": "b", "state": {"running": {}}}]}}
    assert POD.cells(pod, NOW) == ["p", "0/1", "Init:1/2", "0", "10m", "10.0.0.5", "node-1", "<none>", "<none>"]
    restarted = {"metadata": {"name": "r", "creationTimestamp": ago(10), "deletionTimestamp": ago(0)},
                 "spec": {"containers": [{"name": "c"}]},
                 "status": {"phase": "Running", "containerStatuses": [
                     {"name": "c", "ready": True, "restartCount": 3, "state": {"running": {}},
                      "lastState": {"terminated": {"finishedAt": ago(2)}}}]}}
    assert POD.cells(restarted, NOW)[1:4] == ["1/1", "Terminating", "3 (2m ago)"]


def test_event_series_and_sources() -> None:
    event = {"metadata": {"name": "e"}, "type": "Normal", "reason": "Applied", "message": " done \n",
             "involvedObject": {"kind": "InfraDeployment", "name": "vpc", "fieldPath": "spec"},
             "eventTime": ago(9), "series": {"count": 4, "lastObservedTime": ago(1)},
             "reportingComponent": "devops-operator", "reportingInstance": "pod-1"}
    assert EVENT.cells(event, NOW) == ["60s", "Normal", "Applied", "infradeployment/vpc", "spec",
                                       "devops-operator, pod-1", "done", "9m", 4, "e"]
