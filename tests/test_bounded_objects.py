"""Bounded objects: every list has a maxItems, lists filled from outside data say when they were cut,
large spec values stay out of kopf's annotation, and messages are bounded."""

from __future__ import annotations

import json
from typing import Any

import kopf
import pytest
from pydantic import ValidationError

from devops_operator.api.common import MAX_STATUS_MESSAGE, bounded, max_items
from devops_operator.api.crdgen import render_all
from devops_operator.api.healthcheck import HealthCheckStatus
from devops_operator.api.infradeployment import MAX_INLINE_BYTES, DeploymentSource, DriftStatus
from devops_operator.controllers.status import Outcome, build_status
from devops_operator.kube.diffbase import CompactDiffBaseStorage, compact


def arrays(node: Any, path: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if not isinstance(node, dict):
        return found
    if node.get("type") == "array":
        found.append((path, node.get("maxItems")))
        found += arrays(node.get("items"), path + "[]")
    for key, child in (node.get("properties") or {}).items():
        found += arrays(child, f"{path}.{key}")
    if isinstance(node.get("additionalProperties"), dict):
        found += arrays(node["additionalProperties"], path + ".*")
    return found


@pytest.mark.parametrize("crd", list(render_all().values()), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_every_list_in_every_crd_is_bounded(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found = arrays(schema["properties"]["spec"], "spec") + arrays(schema["properties"]["status"], "status")
    assert found
    assert [path for path, limit in found if limit is None] == []


def test_bounded_cuts_at_the_fields_max_items_and_says_so() -> None:
    limit = max_items(DriftStatus, "resources")
    addresses = [f"aws_sqs_queue.q{i}" for i in range(limit + 7)]
    kept, truncated = bounded(DriftStatus, "resources", addresses)
    assert len(kept) == limit and truncated and kept == addresses[:limit]
    assert bounded(DriftStatus, "resources", addresses[:3]) == (addresses[:3], False)
    # The status carries the flag next to the list.
    assert "resources_truncated" in DriftStatus.model_fields
    assert "resources_truncated" in HealthCheckStatus.model_fields
    with pytest.raises(ValueError, match="declares no max_length"):
        max_items(DriftStatus, "count")


def test_status_messages_are_bounded_after_redaction() -> None:
    huge = "spec.x: " + "too long " * 2000 + "password=hunter2"
    status = build_status({}, 1, Outcome.stalled("InvalidSpec", huge, {}, (("Drifted", "True", "Drift", huge),)))
    assert len(status["message"]) == MAX_STATUS_MESSAGE and status["message"].endswith("…")
    assert all(len(c["message"]) <= MAX_STATUS_MESSAGE for c in status["conditions"])
    short = build_status({}, 1, Outcome.stalled("InvalidSpec", "db password=hunter2", {}))
    assert "hunter2" not in short["message"]


def test_inline_sources_are_bounded_in_all() -> None:
    DeploymentSource.model_validate({"inline": {"main.tf": "x" * (MAX_INLINE_BYTES - 10), "b.tf": "y" * 10}})
    with pytest.raises(ValidationError, match="move the module to a ConfigMap"):
        DeploymentSource.model_validate({"inline": {"main.tf": "x" * MAX_INLINE_BYTES, "b.tf": "y"}})
    crd = next(c for c in render_all().values() if c["spec"]["names"]["kind"] == "InfraDeployment")
    inline = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "source"]["properties"]["inline"]
    assert inline["maxProperties"] == 50 and inline["additionalProperties"]["maxLength"] == MAX_INLINE_BYTES
    assert f"sum() <= {MAX_INLINE_BYTES}" in inline["x-kubernetes-validations"][0]["rule"]


def body(files: dict[str, str]) -> kopf.Body:
    return kopf.Body({
        "apiVersion": "devops.fractary.io/v1alpha1", "kind": "InfraDeployment",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"spec": {"source": {"inline": files}}})}},
        "spec": {"environment": "test", "source": {"inline": files}},
    })


def test_kopfs_diff_base_stores_long_values_as_digests() -> None:
    storage = CompactDiffBaseStorage(prefix="devops.fractary.io", key="last-handled-configuration")
    files = {"main.tf": "resource x {}\n" * 4000}  # ~56 KiB
    essence = storage.build(body=body(files))
    patch = kopf.Patch()
    storage.store(body=body(files), patch=patch, essence=essence)
    stored = patch["metadata"]["annotations"]["devops.fractary.io/last-handled-configuration"]
    assert len(stored) < 1024
    assert json.loads(stored)["spec"]["source"]["inline"]["main.tf"].startswith("sha256:")
    assert json.loads(stored)["spec"]["environment"] == "test"  # short values as they are
    # A change still shows: the digest moves with the content.
    changed = storage.build(body=body({"main.tf": files["main.tf"] + "# edit\n"}))
    assert changed != essence
    assert compact({"a": ["x" * 300, 1, None]})["a"][1:] == [1, None]
