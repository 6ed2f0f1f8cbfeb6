"""ConfigMap source keys that climb out of the workspace (issue 14, item 13c).

A ConfigMap key holds no '/', so the runner reads `__` as one: `modules__..__..__x` or a leading `__` would
decode to a path outside the module's directory. Each attack is reproduced first: the pure rule, the runner
refusing such a key (nothing written outside), and the operator refusing it before any Job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from devops_operator.runner.main import ALLOW_STANDIN_ENV, Runner
from devops_operator.runner.sources import SourceError, config_map_files, config_map_key_refusal
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.request import RunRequest

from deployments import QUEUE_MODULE, deployment, jobs, project, wait_phase
from support import wait_until

# Keys a real API server accepts (only `[-._a-zA-Z0-9]`, not `.`/`..`, not starting with `..`).
CLIMBING = "modules__..__..__..__escaped.tf"


@pytest.mark.parametrize(("key", "rule"), [
    (CLIMBING, "'..' path segment"),
    ("a__.__main.tf", "'.' or '..' path segment"),
    ("__etc__passwd", "absolute path"),
    ("a____main.tf", "empty path segment"),
    ("modules__", "empty path segment"),
    ("modules/main.tf", "path separator"),
])
def test_a_key_decoding_outside_the_workspace_is_refused_naming_the_rule(key: str, rule: str) -> None:
    refusal = config_map_key_refusal(key)
    assert refusal is not None and rule in refusal
    with pytest.raises(SourceError) as refused:
        config_map_files("team", "module", {"main.tf": "", key: "x"})
    assert refused.value.field == "spec.source.configMapRef.name"
    assert f"ConfigMap team/module key {key!r}" in str(refused.value)


@pytest.mark.parametrize("key", ["main.tf", "modules__vpc__main.tf", "a_b.tf", "a___b.tf", ".terraform.lock.hcl",
                                 ".x.tf"])
def test_ordinary_keys_decode_to_relative_paths(key: str) -> None:
    assert config_map_key_refusal(key) is None
    (path,) = config_map_files("team", "module", {key: ""})
    assert not Path(path).is_absolute() and ".." not in Path(path).parts


def _request(namespace: str) -> RunRequest:
    return RunRequest(step="plan", deployment="web", namespace=namespace,
                      owner={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "uid": "u"}},
                      source={"configMapRef": {"name": "module"}}, module_path=".", engine="terraform",
                      engine_version=None, backend_override={}, variables={})


@pytest.mark.parametrize("absolute", [False, True])
def test_the_runner_refuses_the_key_and_writes_nothing_outside(kube_api: ApiClient, namespace: str, tmp_path: Path,
                                                              absolute: bool) -> None:
    workdir = tmp_path / "work"
    target = tmp_path / "escaped.tf"
    # workdir/source/modules/../../.. is tmp_path; an absolute key names tmp_path itself.
    key = ("__" + "__".join(target.parts[1:])) if absolute else CLIMBING
    assert "__" not in "".join(target.parts[1:])  # the absolute key decodes to exactly `target`
    CoreV1Api(kube_api).create_namespaced_config_map(namespace, {"metadata": {"name": "module"}, "data": {
        **QUEUE_MODULE, key: 'resource "aws_sqs_queue" "planted" {\n  name = "planted"\n}\n'}})
    runner = Runner(_request(namespace), kube_api, workdir, {ALLOW_STANDIN_ENV: "1"})
    assert runner.execute() == 1
    assert runner.result["category"] == "config"
    assert runner.result["field"] == "spec.source.configMapRef.name"
    assert repr(key) in runner.result["error"]
    assert not target.exists() and not (workdir / "escaped.tf").exists()
    assert not (workdir / "source" / "main.tf").exists()  # refused before any file was written


def _events(api: ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    items = CoreV1Api(api).list_namespaced_event(namespace).items
    return [{"reason": e.reason, "message": e.message} for e in items if e.involved_object.name == name]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_operator_refuses_the_key_before_any_job(operator: OperatorThread, kube_api: ApiClient,
                                                     namespace: str) -> None:
    project(kube_api, namespace)
    CoreV1Api(kube_api).create_namespaced_config_map(namespace, {"metadata": {"name": "module"}, "data": {
        **QUEUE_MODULE, CLIMBING: "planted"}})
    deployment(kube_api, namespace, "climb", source={"configMapRef": {"name": "module"}})
    status = wait_phase(kube_api, namespace, "climb", "Stalled")["status"]
    assert {c["reason"] for c in status["conditions"] if c["type"] == "Stalled"} == {"UnsafeSourceKey"}
    assert status["message"].startswith(f"spec.source.configMapRef.name: ConfigMap {namespace}/module key "
                                        f"{CLIMBING!r} has a '.' or '..' path segment")
    assert jobs(kube_api, namespace) == []
    wait_until(lambda: any(CLIMBING in (e["message"] or "") and e["reason"] == "UnsafeSourceKey"
                           for e in _events(kube_api, namespace, "climb")), what="an Event naming the key")
    # Renaming the key is picked up by itself (the deployment waits on the ConfigMap, as for a missing one).
    CoreV1Api(kube_api).replace_namespaced_config_map("module", namespace, {"metadata": {"name": "module"},
                                                                           "data": dict(QUEUE_MODULE)})
    wait_until(lambda: jobs(kube_api, namespace), timeout=60, what="a plan Job once the key is gone")
