"""The emulated Kubernetes API answers as a real API server does (API conventions, kubectl, kopf).

One server (with a small test CRD) is shared by the module; every test works in its own namespace.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import kmock
import kopf
import kubernetes
import pytest
import requests
from kubernetes.client import ApiException

from devops_operator.sandbox.apiserver import ApiError, ApiServerEmulator, EmulatedKubernetes
from devops_operator.sandbox.apiserver.tables import human_age

from support import wait_until

GROUP, VERSION, PLURAL, KIND = "fidelity.example.dev", "v1", "gizmos", "Gizmo"
GIZMO_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "gizmo", "kind": KIND, "shortNames": ["gz"]},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Region", "type": "string", "jsonPath": ".spec.aws.region"},
                    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["environment", "environments"],
                                "properties": {
                                    "environment": {"type": "string", "enum": ["dev", "staging", "prod"]},
                                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "aws": {
                                        "type": "object",
                                        "default": {},
                                        "properties": {"region": {"type": "string", "default": "eu-west-1"}},
                                    },
                                    "environments": {
                                        "type": "array",
                                        "minItems": 1,
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {
                                            "type": "object",
                                            "required": ["name"],
                                            "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}},
                                        },
                                    },
                                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
STALE_MESSAGE = (
    'Operation cannot be fulfilled on configmaps "{}": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedKubernetes]:
    with EmulatedKubernetes() as k8s:
        k8s.register_crd(GIZMO_CRD)
        yield k8s


@pytest.fixture()
def namespace(cluster: EmulatedKubernetes) -> str:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(cluster.api_client()).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture()
def core(cluster: EmulatedKubernetes) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(cluster.api_client())


@pytest.fixture()
def custom(cluster: EmulatedKubernetes) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(cluster.api_client())


def gizmo(name: str, **spec: Any) -> dict[str, Any]:
    body_spec = {"environment": "dev", "environments": [{"name": "dev"}], **spec}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": body_spec}


def gizmos_url(cluster: EmulatedKubernetes, namespace: str, *parts: str) -> str:
    return "/".join([f"{cluster.url}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", *parts])


def configmaps_url(cluster: EmulatedKubernetes, namespace: str, *parts: str) -> str:
    return "/".join([f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps", *parts])


def patch(url: str, body: Any, content_type: str = "application/merge-patch+json") -> requests.Response:
    return requests.patch(url, data=json.dumps(body), headers={"Content-Type": content_type}, timeout=10)


def watch_events(url: str, **params: str) -> list[dict[str, Any]]:
    """A watch stream read to its end (the server closes it after timeoutSeconds)."""
    params = {"watch": "true", "timeoutSeconds": "1", **params}
    with requests.get(url, params=params, stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        return [json.loads(line) for line in response.iter_lines() if line]


def api_error(excinfo: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(excinfo.value.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == excinfo.value.status
    return body


# --- create -----------------------------------------------------------------------------------------


def test_create_assigns_server_metadata(
    cluster: EmulatedKubernetes, core: kubernetes.client.CoreV1Api, namespace: str
) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    assert created.kind == "ConfigMap" and created.api_version == "v1"
    assert str(uuid.UUID(created.metadata.uid)) == created.metadata.uid
    assert created.metadata.resource_version.isdigit()
    assert created.metadata.generation == 1
    assert created.metadata.namespace == namespace  # taken from the URL
    stamp = requests.get(configmaps_url(cluster, namespace, "settings"), timeout=5).json()["metadata"][
        "creationTimestamp"
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)


def test_create_ignores_server_owned_fields_from_the_client(cluster: EmulatedKubernetes, namespace: str) -> None:
    body = {
        "metadata": {
            "name": "forged",
            "uid": "not-a-uid",
            "resourceVersion": "999999",
            "generation": 42,
            "creationTimestamp": "2001-01-01T00:00:00Z",
        }
    }
    created = requests.post(configmaps_url(cluster, namespace), json=body, timeout=10).json()["metadata"]
    assert created["uid"] != "not-a-uid"
    assert created["generation"] == 1
    assert created["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert int(created["resourceVersion"]) <= cluster.call(lambda: cluster.emulator.resource_version)


def test_create_refuses_a_namespace_that_contradicts_the_url(cluster: EmulatedKubernetes, namespace: str) -> None:
    body = {"metadata": {"name": "elsewhere", "namespace": "other"}}
    response = requests.post(configmaps_url(cluster, namespace), json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    assert "does not match the namespace sent on the request" in response.json()["message"]


def test_generate_name_gets_a_random_suffix(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "job-"}})
    second = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "job-"}})
    assert re.fullmatch(r"job-[a-z0-9]{5}", first.metadata.name)
    assert first.metadata.name != second.metadata.name


def test_duplicate_create_is_409_already_exists(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "twice"}})
    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "twice"}})
    status = api_error(excinfo)
    assert excinfo.value.status == 409
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "twice" already exists'
    assert status["details"] == {"name": "twice", "group": "", "kind": "configmaps"}


def test_create_drops_status_of_a_resource_with_status_subresource(
    custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    body = {**gizmo("fresh"), "status": {"phase": "Forged"}}
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert "status" not in created


def test_resource_versions_grow_across_all_objects(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    versions = [
        int(core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm{i}"}}).metadata.resource_version)
        for i in range(3)
    ]
    assert versions == sorted(versions) and len(set(versions)) == 3


# --- update: patches and PUT ----------------------------------------------------------------------


def test_merge_patch_merges_maps_and_null_deletes(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    requests.post(url, json={"metadata": {"name": "m", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}}, timeout=5)
    response = patch(f"{url}/m", {"metadata": {"labels": {"b": None, "c": "3"}}, "data": {"y": "2"}})
    assert response.status_code == 200
    assert response.json()["metadata"]["labels"] == {"a": "1", "c": "3"}
    assert response.json()["data"] == {"x": "1", "y": "2"}


def test_strategic_merge_patch_merges_maps_and_replaces_lists(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    body = {"metadata": {"name": "s", "finalizers": ["a/one", "a/two"]}, "data": {"x": "1"}}
    requests.post(url, json=body, timeout=5)
    changes = {"metadata": {"finalizers": ["a/three"]}, "data": {"y": "2"}}
    response = patch(f"{url}/s", changes, "application/strategic-merge-patch+json")
    assert response.json()["metadata"]["finalizers"] == ["a/three"]
    assert response.json()["data"] == {"x": "1", "y": "2"}
    patch(f"{url}/s", {"metadata": {"finalizers": None}})


def test_json_patch_supports_all_operations(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    requests.post(url, json={"metadata": {"name": "j"}, "data": {"a": "1", "b": "2", "c": "3"}}, timeout=5)
    operations = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/d", "value": "4"},
        {"op": "remove", "path": "/data/b"},
        {"op": "replace", "path": "/data/c", "value": "33"},
        {"op": "move", "from": "/data/d", "path": "/data/e"},
        {"op": "copy", "from": "/data/a", "path": "/data/f"},
    ]
    response = patch(f"{url}/j", operations, "application/json-patch+json")
    assert response.status_code == 200
    assert response.json()["data"] == {"a": "1", "c": "33", "e": "4", "f": "1"}


def test_json_patch_failed_test_is_422_and_changes_nothing(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    created = requests.post(url, json={"metadata": {"name": "t"}, "data": {"a": "1"}}, timeout=5).json()
    operations = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "replace", "path": "/data/a", "value": "2"},
    ]
    response = patch(f"{url}/t", operations, "application/json-patch+json")
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"
    assert requests.get(f"{url}/t", timeout=5).json() == created


def test_strategic_merge_patch_is_refused_for_custom_resources(
    cluster: EmulatedKubernetes, custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("smp"))
    response = patch(
        gizmos_url(cluster, namespace, "smp"), {"spec": {"replicas": 2}}, "application/strategic-merge-patch+json"
    )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_put_replaces_the_whole_object(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}})
    body = {"metadata": {"name": "p", "resourceVersion": created.metadata.resource_version}, "data": {"c": "3"}}
    replaced = core.replace_namespaced_config_map("p", namespace, body)
    assert replaced.data == {"c": "3"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.generation == 2  # data is content: it counts as a change


def test_put_of_a_missing_object_is_404(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as excinfo:
        core.replace_namespaced_config_map("ghost", namespace, {"metadata": {"name": "ghost"}})
    assert excinfo.value.status == 404
    assert api_error(excinfo)["reason"] == "NotFound"


def test_generation_counts_only_desired_state_changes(
    custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    args = (GROUP, VERSION, namespace, PLURAL, "gen")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("gen"))
    labelled = custom.patch_namespaced_custom_object(*args, {"metadata": {"labels": {"team": "a"}}})
    assert labelled["metadata"]["generation"] == 1
    statused = custom.patch_namespaced_custom_object_status(*args, {"status": {"phase": "Ready"}})
    assert statused["metadata"]["generation"] == 1
    respecced = custom.patch_namespaced_custom_object(*args, {"spec": {"replicas": 3}})
    assert respecced["metadata"]["generation"] == 2


def test_a_no_op_patch_keeps_the_resource_version(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    created = requests.post(url, json={"metadata": {"name": "same"}, "data": {"a": "1"}}, timeout=5).json()
    response = patch(f"{url}/same", {"data": {"a": "1"}})
    assert response.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# --- status subresource ---------------------------------------------------------------------------


def test_status_writes_change_only_status(custom: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
    args = (GROUP, VERSION, namespace, PLURAL, "st")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("st"))
    body = {"metadata": {"labels": {"sneaky": "yes"}}, "spec": {"replicas": 9}, "status": {"phase": "Ready"}}
    patched = custom.patch_namespaced_custom_object_status(*args, body)
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"]["replicas"] == 1
    assert "labels" not in patched["metadata"]


def test_main_object_writes_ignore_status(custom: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
    args = (GROUP, VERSION, namespace, PLURAL, "main")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("main"))
    custom.patch_namespaced_custom_object_status(*args, {"status": {"phase": "Ready"}})
    patched = custom.patch_namespaced_custom_object(*args, {"spec": {"replicas": 2}, "status": {"phase": "Hacked"}})
    assert patched["spec"]["replicas"] == 2
    assert patched["status"] == {"phase": "Ready"}


def test_status_of_a_resource_without_the_subresource_is_404(cluster: EmulatedKubernetes, namespace: str) -> None:
    requests.post(configmaps_url(cluster, namespace), json={"metadata": {"name": "plain"}}, timeout=5)
    response = patch(configmaps_url(cluster, namespace, "plain", "status"), {"data": {"a": "1"}})
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


# --- optimistic concurrency -----------------------------------------------------------------------


def test_a_stale_resource_version_is_a_409_conflict(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "race"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("race", namespace, {"data": {"a": "2"}})
    stale = {"metadata": {"name": "race", "resourceVersion": created.metadata.resource_version}, "data": {"a": "3"}}
    with pytest.raises(ApiException) as excinfo:
        core.replace_namespaced_config_map("race", namespace, stale)
    status = api_error(excinfo)
    assert (excinfo.value.status, status["reason"]) == (409, "Conflict")
    assert status["message"] == STALE_MESSAGE.format("race")
    with pytest.raises(ApiException) as patch_excinfo:
        core.patch_namespaced_config_map("race", namespace, stale)
    assert patch_excinfo.value.status == 409
    assert core.read_namespaced_config_map("race", namespace).data == {"a": "2"}


def test_put_without_resource_version_is_unconditional(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "blind"}, "data": {"a": "1"}})
    replaced = core.replace_namespaced_config_map(
        "blind", namespace, {"metadata": {"name": "blind"}, "data": {"b": "2"}}
    )
    assert replaced.data == {"b": "2"}


def test_put_of_a_custom_resource_needs_its_resource_version(cluster: EmulatedKubernetes, namespace: str) -> None:
    created = requests.post(gizmos_url(cluster, namespace), json=gizmo("strict"), timeout=5).json()
    blind = requests.put(gizmos_url(cluster, namespace, "strict"), json=gizmo("strict", size=3), timeout=5)
    assert blind.status_code == 422
    assert blind.json()["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    conditional = gizmo("strict", size=3)
    conditional["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    assert requests.put(gizmos_url(cluster, namespace, "strict"), json=conditional, timeout=5).status_code == 200


# --- lists and selectors --------------------------------------------------------------------------


def test_lists_carry_kind_api_version_and_resource_version(cluster: EmulatedKubernetes, namespace: str) -> None:
    requests.post(gizmos_url(cluster, namespace), json=gizmo("listed"), timeout=5)
    body = requests.get(gizmos_url(cluster, namespace), timeout=5).json()
    assert (body["kind"], body["apiVersion"]) == (f"{KIND}List", f"{GROUP}/{VERSION}")
    assert int(body["metadata"]["resourceVersion"]) == cluster.call(lambda: cluster.emulator.resource_version)
    assert [(item["kind"], item["apiVersion"]) for item in body["items"]] == [(KIND, f"{GROUP}/{VERSION}")]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["web1", "web2"]),
        ("tier==web", ["web1", "web2"]),
        ("tier!=web", ["db", "bare"]),
        ("tier in (db,cache)", ["db"]),
        ("tier notin (web)", ["db", "bare"]),
        ("tier", ["web1", "web2", "db"]),
        ("!tier", ["bare"]),
        ("tier=web,env=prod", ["web2"]),
    ],
)
def test_label_selectors(cluster: EmulatedKubernetes, namespace: str, selector: str, expected: list[str]) -> None:
    labels = {"web1": {"tier": "web"}, "web2": {"tier": "web", "env": "prod"}, "db": {"tier": "db"}, "bare": {}}
    for name, object_labels in labels.items():
        body = {"metadata": {"name": name, "labels": object_labels}}
        requests.post(configmaps_url(cluster, namespace), json=body, timeout=5)
    items = requests.get(configmaps_url(cluster, namespace), params={"labelSelector": selector}, timeout=5).json()
    assert sorted(item["metadata"]["name"] for item in items["items"]) == sorted(expected)


def test_field_selectors(cluster: EmulatedKubernetes, namespace: str, core: kubernetes.client.CoreV1Api) -> None:
    for name in ("one", "two"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    by_name = core.list_namespaced_config_map(namespace, field_selector="metadata.name=one")
    assert [item.metadata.name for item in by_name.items] == ["one"]
    but_name = core.list_namespaced_config_map(namespace, field_selector="metadata.name!=one")
    assert [item.metadata.name for item in but_name.items] == ["two"]
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace=={namespace}")
    assert sorted(item.metadata.name for item in everywhere.items) == ["one", "two"]
    unsupported = requests.get(
        gizmos_url(cluster, namespace), params={"fieldSelector": "spec.environment=dev"}, timeout=5
    )
    assert unsupported.status_code == 400


def test_lists_are_chunked_with_limit_and_continue(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    for index in range(5):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{index}"}})
    first = core.list_namespaced_config_map(namespace, limit=2)
    rest = core.list_namespaced_config_map(namespace, limit=10, _continue=first.metadata._continue)
    names = [item.metadata.name for item in first.items + rest.items]
    assert names == [f"c{index}" for index in range(5)] and rest.metadata._continue is None


# --- watch ----------------------------------------------------------------------------------------


def test_watch_from_a_list_resource_version_misses_nothing(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    requests.post(url, json={"metadata": {"name": "before"}}, timeout=5)
    listed = requests.get(url, timeout=5).json()["metadata"]["resourceVersion"]
    requests.post(url, json={"metadata": {"name": "after"}}, timeout=5)  # written before the watch starts
    patch(f"{url}/before", {"data": {"k": "v"}})
    events = watch_events(url, resourceVersion=listed)
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("ADDED", "after"),
        ("MODIFIED", "before"),
    ]
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == sorted(versions) and versions[0] > int(listed)
    assert all(event["object"]["kind"] == "ConfigMap" for event in events)


def test_watch_without_resource_version_starts_with_the_current_objects(
    cluster: EmulatedKubernetes, namespace: str
) -> None:
    url = configmaps_url(cluster, namespace)
    for name in ("a", "b"):
        requests.post(url, json={"metadata": {"name": name}}, timeout=5)
    events = watch_events(url)
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]


def test_watch_honours_selectors_including_objects_leaving_them(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    start = requests.get(url, timeout=5).json()["metadata"]["resourceVersion"]
    requests.post(url, json={"metadata": {"name": "in", "labels": {"app": "x"}}}, timeout=5)
    requests.post(url, json={"metadata": {"name": "out", "labels": {"app": "y"}}}, timeout=5)
    patch(f"{url}/in", {"metadata": {"labels": {"app": "z"}}})
    events = watch_events(url, resourceVersion=start, labelSelector="app=x")
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("ADDED", "in"),
        ("DELETED", "in"),  # it no longer matches: for this watch, it is gone
    ]
    named = watch_events(url, resourceVersion=start, fieldSelector="metadata.name=out")
    assert [event["object"]["metadata"]["name"] for event in named] == ["out"]


def test_watch_stays_open_then_ends_after_timeout_seconds(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    params = {"watch": "true", "timeoutSeconds": "2"}
    with requests.get(url, params=params, stream=True, timeout=10) as response:
        assert response.status_code == 200  # the headers are sent at once: the watch has started
        requests.post(url, json={"metadata": {"name": "later"}}, timeout=5)
        # Read to the end: the server closes the stream itself (a hung one would hit the read timeout).
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [("ADDED", "later")]


async def test_watch_from_a_forgotten_resource_version_gets_410_expired() -> None:
    async with ApiServerEmulator(event_history=2) as emulator, kmock.Server(emulator) as server:
        emulator.resources.load_bundled()
        url = "/api/v1/namespaces/default/configmaps"
        for index in range(4):
            await server.client.post(url, json={"metadata": {"name": f"n{index}"}})
        async with server.client.get(url, params={"watch": "true", "resourceVersion": "1"}) as response:
            event = json.loads(await response.content.readline())
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


# --- delete, finalizers, garbage collection -------------------------------------------------------


def test_delete_with_finalizers_waits_for_them(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = configmaps_url(cluster, namespace)
    requests.post(url, json={"metadata": {"name": "held", "finalizers": ["example.dev/hold"]}}, timeout=5)
    start = requests.get(url, timeout=5).json()["metadata"]["resourceVersion"]
    marked = requests.delete(f"{url}/held", timeout=5).json()
    assert marked["metadata"]["deletionTimestamp"]
    assert requests.get(f"{url}/held", timeout=5).status_code == 200  # still there
    patch(f"{url}/held", {"metadata": {"finalizers": None}})
    assert requests.get(f"{url}/held", timeout=5).status_code == 404
    events = watch_events(url, resourceVersion=start)
    assert [event["type"] for event in events] == ["MODIFIED", "MODIFIED", "DELETED"]


def _pod(name: str, *, node: str | None = "node-a", grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": name}, "spec": spec}


def test_deleting_a_running_pod_marks_it_until_its_kubelet_confirms(cluster: EmulatedKubernetes,
                                                                    namespace: str) -> None:
    """Graceful pod deletion: deletionTimestamp = now + the pod's grace period, the object kept (a MODIFIED
    event), then removed when the kubelet deletes it again with gracePeriodSeconds=0 (DELETED)."""
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/pods"
    requests.post(url, json=_pod("busy", grace=45), timeout=5)
    start = requests.get(url, timeout=5).json()["metadata"]["resourceVersion"]
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    answer = requests.delete(f"{url}/busy", timeout=5)
    marked = answer.json()
    assert (answer.status_code, marked["kind"]) == (200, "Pod")  # the object, not a Status: it is not gone
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 45
    at = datetime.datetime.fromisoformat(marked["metadata"]["deletionTimestamp"].replace("Z", "+00:00"))
    assert datetime.timedelta(seconds=44) <= at - before <= datetime.timedelta(seconds=47)
    kept = requests.get(f"{url}/busy", timeout=5).json()
    assert kept["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    # The kubelet writes the final status while the pod terminates: that does not remove it.
    patch(f"{url}/busy/status", {"status": {"phase": "Failed"}})
    assert requests.get(f"{url}/busy", timeout=5).status_code == 200
    confirmed = requests.delete(f"{url}/busy", json={"gracePeriodSeconds": 0}, timeout=5).json()
    assert (confirmed["kind"], confirmed["status"]) == ("Status", "Success")
    assert requests.get(f"{url}/busy", timeout=5).status_code == 404
    events = watch_events(url, resourceVersion=start)
    assert [event["type"] for event in events] == ["MODIFIED", "MODIFIED", "DELETED"]


def test_a_pod_grace_period_comes_from_the_request_and_may_only_shrink(cluster: EmulatedKubernetes,
                                                                        namespace: str) -> None:
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/pods"
    requests.post(url, json=_pod("default-grace"), timeout=5)
    assert requests.delete(f"{url}/default-grace", timeout=5).json()["metadata"]["deletionGracePeriodSeconds"] == 30
    requests.post(url, json=_pod("asked", grace=300), timeout=5)
    first = requests.delete(f"{url}/asked", json={"gracePeriodSeconds": 20}, timeout=5).json()
    assert first["metadata"]["deletionGracePeriodSeconds"] == 20
    longer = requests.delete(f"{url}/asked?gracePeriodSeconds=60", timeout=5).json()
    assert longer["metadata"]["deletionGracePeriodSeconds"] == 20  # never lengthened
    shorter = requests.delete(f"{url}/asked", json={"gracePeriodSeconds": 5}, timeout=5).json()
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    assert shorter["metadata"]["deletionTimestamp"] <= first["metadata"]["deletionTimestamp"]


def test_a_pod_with_nothing_to_stop_is_deleted_at_once(cluster: EmulatedKubernetes, namespace: str) -> None:
    """Never scheduled (no nodeName), already Succeeded/Failed, or a forced delete (gracePeriodSeconds=0)."""
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/pods"
    requests.post(url, json=_pod("unscheduled", node=None), timeout=5)
    requests.post(url, json=_pod("finished"), timeout=5)
    patch(f"{url}/finished/status", {"status": {"phase": "Succeeded"}})
    requests.post(url, json=_pod("forced"), timeout=5)
    for name, options in (("unscheduled", None), ("finished", None), ("forced", {"gracePeriodSeconds": 0})):
        answer = requests.delete(f"{url}/{name}", json=options, timeout=5).json()
        assert answer["kind"] == "Status", name
        assert requests.get(f"{url}/{name}", timeout=5).status_code == 404, name


def test_a_terminating_pod_with_a_finalizer_waits_for_both(cluster: EmulatedKubernetes, namespace: str) -> None:
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/pods"
    body = _pod("held")
    body["metadata"]["finalizers"] = ["example.dev/hold"]
    requests.post(url, json=body, timeout=5)
    requests.delete(f"{url}/held", timeout=5)
    confirmed = requests.delete(f"{url}/held", json={"gracePeriodSeconds": 0}, timeout=5).json()
    assert confirmed["metadata"]["deletionGracePeriodSeconds"] == 0  # stopped; the finalizer still holds it
    patch(f"{url}/held", {"metadata": {"finalizers": None}})
    assert requests.get(f"{url}/held", timeout=5).status_code == 404


def test_delete_answers_success_and_a_missing_object_404(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "gone"}})
    deleted = core.delete_namespaced_config_map("gone", namespace)  # this client method returns the raw dict
    assert (deleted["kind"], deleted["status"], deleted["details"]["name"]) == ("Status", "Success", "gone")
    with pytest.raises(ApiException) as excinfo:
        core.delete_namespaced_config_map("gone", namespace)
    status = api_error(excinfo)
    assert (excinfo.value.status, status["reason"]) == (404, "NotFound")
    assert status["message"] == 'configmaps "gone" not found'


def test_deleting_a_namespace_deletes_its_objects(
    cluster: EmulatedKubernetes, core: kubernetes.client.CoreV1Api
) -> None:
    core.create_namespace({"metadata": {"name": "short-lived"}})
    core.create_namespaced_config_map("short-lived", {"metadata": {"name": "inside"}})
    core.delete_namespace("short-lived")
    assert core.list_namespaced_config_map("short-lived").items == []


def test_writes_in_unsupported_encodings_are_415(cluster: EmulatedKubernetes, namespace: str) -> None:
    headers = {"Content-Type": "text/plain"}
    response = requests.post(configmaps_url(cluster, namespace), data=b"x", headers=headers, timeout=5)
    assert (response.status_code, response.json()["reason"]) == (415, "UnsupportedMediaType")
    assert "application/vnd.kubernetes.protobuf" in response.json()["message"]
    yaml_body = "metadata:\n  name: from-yaml\ndata:\n  a: '1'\n"
    created = requests.post(
        configmaps_url(cluster, namespace), data=yaml_body, headers={"Content-Type": "application/yaml"}, timeout=5
    )
    assert (created.status_code, created.json()["data"]) == (201, {"a": "1"})


def test_delete_collection_honours_the_label_selector(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    for name, tier in (("w1", "web"), ("w2", "web"), ("d1", "db")):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"tier": tier}}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="tier=web")
    assert [item.metadata.name for item in core.list_namespaced_config_map(namespace).items] == ["d1"]


def test_owned_objects_are_garbage_collected(
    core: kubernetes.client.CoreV1Api, custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    owner = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("owner"))
    reference = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": "owner", "uid": owner["metadata"]["uid"]}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "owned", "ownerReferences": [reference]}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "free"}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "owner")
    remaining = [item.metadata.name for item in core.list_namespaced_config_map(namespace).items]
    assert remaining == ["free"]


# --- CRDs -----------------------------------------------------------------------------------------


def test_crds_posted_over_http_are_established_and_discoverable(cluster: EmulatedKubernetes) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(cluster.api_client())
    crd = json.loads(json.dumps(GIZMO_CRD).replace(GROUP, "other.example.dev"))
    crd["spec"]["names"].update(shortNames=["og"], categories=["all"])
    created = cluster.api_client().sanitize_for_serialization(extensions.create_custom_resource_definition(crd))
    conditions = {condition["type"]: condition["status"] for condition in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert created["status"]["acceptedNames"]["kind"] == KIND
    resources = requests.get(f"{cluster.url}/apis/other.example.dev/v1", timeout=5).json()["resources"]
    main = next(entry for entry in resources if entry["name"] == PLURAL)
    assert (main["kind"], main["namespaced"], main["shortNames"], main["categories"]) == (KIND, True, ["og"], ["all"])
    assert f"{PLURAL}/status" in [entry["name"] for entry in resources]
    custom = kubernetes.client.CustomObjectsApi(cluster.api_client())
    other_gizmo = {**gizmo("doomed"), "apiVersion": f"other.example.dev/{VERSION}"}
    custom.create_namespaced_custom_object("other.example.dev", VERSION, "default", PLURAL, other_gizmo)
    extensions.delete_custom_resource_definition(f"{PLURAL}.other.example.dev")
    assert requests.get(f"{cluster.url}/apis/other.example.dev/v1", timeout=5).status_code == 404
    leftovers = requests.get(f"{cluster.url}/apis/other.example.dev/v1/{PLURAL}", timeout=5)
    assert leftovers.status_code == 404  # the resource and its objects are gone with the CRD


def test_register_crd_refuses_an_invalid_crd(cluster: EmulatedKubernetes) -> None:
    broken = {"metadata": {"name": "wrong.example.dev"}, "spec": {**GIZMO_CRD["spec"], "scope": "Everywhere"}}
    with pytest.raises(ApiError) as excinfo:
        cluster.register_crd(broken)
    assert excinfo.value.code == 422
    assert {cause["field"] for cause in excinfo.value.as_status()["details"]["causes"]} == {
        "metadata.name",
        "spec.scope",
    }


def test_register_crd_serves_the_resource_in_discovery(cluster: EmulatedKubernetes) -> None:
    groups = requests.get(f"{cluster.url}/apis", timeout=5).json()["groups"]
    assert {
        "name": GROUP,
        "versions": [{"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}],
        "preferredVersion": {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION},
    } in groups
    core_resources = requests.get(f"{cluster.url}/api/v1", timeout=5).json()
    assert core_resources["groupVersion"] == "v1"


# --- schema validation, defaulting, pruning -------------------------------------------------------


def test_schema_violations_are_422_invalid_with_causes(
    custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    body = gizmo("bad", environment="qa", replicas="three", environments=[{"name": "Prod"}])
    del body["spec"]["environment"]
    body["spec"]["environments"].append({})
    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    status = api_error(excinfo)
    assert (excinfo.value.status, status["reason"]) == (422, "Invalid")
    causes = {cause["field"]: cause["reason"] for cause in status["details"]["causes"]}
    assert causes == {
        "spec.environment": "FieldValueRequired",
        "spec.replicas": "FieldValueTypeInvalid",
        "spec.environments[0].name": "FieldValueInvalid",
        "spec.environments[1].name": "FieldValueRequired",
    }
    assert (status["details"]["name"], status["details"]["group"], status["details"]["kind"]) == ("bad", GROUP, KIND)
    assert status["message"].startswith(f'{KIND}.{GROUP} "bad" is invalid: [')
    assert (
        'spec.environments[0].name: Invalid value: "Prod": spec.environments[0].name in body '
        "should match '^[a-z][a-z0-9-]*$'"
    ) in status["message"]


def test_schema_single_violation_message_format(custom: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("enum", environment="qa"))
    assert api_error(excinfo)["message"] == (
        f'{KIND}.{GROUP} "enum" is invalid: spec.environment: Unsupported value: "qa": '
        'supported values: "dev", "staging", "prod"'
    )


def test_schema_bounds_and_int_or_string(custom: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("big", replicas=11))
    assert "spec.replicas in body should be less than or equal to 10" in api_error(excinfo)["message"]
    for port in (8080, "http"):
        created = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, gizmo(f"p{port}", port=port)
        )
        assert created["spec"]["port"] == port


def test_schema_defaults_are_applied(custom: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("defaults"))
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["aws"] == {"region": "eu-west-1"}


def test_unknown_fields_are_pruned_or_refused_when_strict(
    cluster: EmulatedKubernetes, custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    body = gizmo("pruned", colour="blue", tags={"team": "a"})
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert "colour" not in created["spec"] and created["spec"]["tags"] == {"team": "a"}
    strict = requests.post(
        gizmos_url(cluster, namespace),
        params={"fieldValidation": "Strict"},
        json=gizmo("strict", colour="blue"),
        timeout=5,
    )
    assert strict.status_code == 400
    assert 'strict decoding error: unknown field "spec.colour"' in strict.json()["message"]
    status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "pruned", {"status": {"anything": {"goes": True}}}
    )
    assert status["status"] == {"anything": {"goes": True}}  # preserve-unknown-fields


def test_patches_are_validated_after_being_applied(custom: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("patched"))
    with pytest.raises(ApiException) as excinfo:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "patched", {"spec": {"environment": None}}
        )
    assert api_error(excinfo)["details"]["causes"][0]["field"] == "spec.environment"
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "patched")
    assert stored["spec"]["environment"] == "dev"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [({"name": "Not_A_Name"}, "FieldValueInvalid"), ({}, "FieldValueRequired")],
)
def test_object_names_are_validated(
    core: kubernetes.client.CoreV1Api, namespace: str, metadata: dict[str, str], reason: str
) -> None:
    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_config_map(namespace, {"metadata": metadata})
    status = api_error(excinfo)
    assert excinfo.value.status == 422
    [cause] = status["details"]["causes"]
    assert (cause["field"], cause["reason"]) == ("metadata.name", reason)
    assert status["message"].startswith('ConfigMap "')  # core kinds are not group-qualified


# --- kubectl get: Tables, OpenAPI -----------------------------------------------------------------


def test_tables_use_the_printer_columns(
    cluster: EmulatedKubernetes, custom: kubernetes.client.CustomObjectsApi, namespace: str
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, gizmo("shown", aws={"region": "us-east-1"})
    )
    conditions = [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]
    status = {"status": {"phase": "Running", "conditions": conditions}}
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "shown", status)
    table = requests.get(gizmos_url(cluster, namespace), headers={"Accept": TABLE_ACCEPT}, timeout=5).json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    columns = [(column["name"], column["type"], column["priority"]) for column in table["columnDefinitions"]]
    assert columns == [
        ("Name", "string", 0),
        ("Phase", "string", 0),
        ("Region", "string", 0),
        ("Ready", "string", 0),
        ("Replicas", "integer", 1),
        ("Age", "date", 0),
    ]
    [row] = table["rows"]
    assert row["cells"][:5] == ["shown", "Running", "us-east-1", "True", 1]
    assert re.fullmatch(r"\d+s", row["cells"][5])
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["namespace"] == namespace


def test_tables_of_builtins_use_their_printers_and_json_stays_default(
    cluster: EmulatedKubernetes, namespace: str
) -> None:
    body = {"metadata": {"name": "tabled"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    requests.post(configmaps_url(cluster, namespace), json=body, timeout=5)
    table = requests.get(
        configmaps_url(cluster, namespace, "tabled"), headers={"Accept": TABLE_ACCEPT}, timeout=5
    ).json()
    assert [column["name"] for column in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["tabled", 2]
    assert requests.get(configmaps_url(cluster, namespace, "tabled"), timeout=5).json()["kind"] == "ConfigMap"
    leases = f"{cluster.url}/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    requests.post(leases, json={"metadata": {"name": "lock"}}, timeout=5)
    lease_table = requests.get(f"{leases}/lock", headers={"Accept": TABLE_ACCEPT}, timeout=5).json()
    assert [column["name"] for column in lease_table["columnDefinitions"]] == ["Name", "Age"]  # no printer here


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 1200, "3h20m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 7200, "3d2h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, age: str) -> None:
    assert human_age(seconds) == age


def test_openapi_v3_root_points_at_every_group_version(cluster: EmulatedKubernetes) -> None:
    root = requests.get(f"{cluster.url}/openapi/v3", timeout=5).json()["paths"]
    assert {"api/v1", "apis/batch/v1", f"apis/{GROUP}/{VERSION}"} <= set(root)
    url = root[f"apis/{GROUP}/{VERSION}"]["serverRelativeURL"]
    assert re.fullmatch(rf"/openapi/v3/apis/{GROUP}/{VERSION}\?hash=[0-9A-F]{{128}}", url)
    document = requests.get(cluster.url + url, timeout=5).json()
    gizmo_schema = document["components"]["schemas"]["dev.example.fidelity.v1.Gizmo"]
    assert gizmo_schema["x-kubernetes-group-version-kind"] == [{"group": GROUP, "kind": KIND, "version": VERSION}]
    assert gizmo_schema["properties"]["spec"]["properties"]["environment"]["enum"] == ["dev", "staging", "prod"]
    assert gizmo_schema["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    # kubectl sends fieldValidation=Strict (and skips its own checks) only if PATCH advertises the parameter.
    patch = document["paths"][f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == KIND
    assert "fieldValidation" in {parameter["name"] for parameter in patch["parameters"]}
    assert requests.get(f"{cluster.url}/openapi/v3/apis/nothing.example/v1", timeout=5).status_code == 404


def test_openapi_v2_is_served_in_protobuf_as_kubectl_asks(cluster: EmulatedKubernetes) -> None:
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    response = requests.get(f"{cluster.url}/openapi/v2", headers={"Accept": accept}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert response.content.startswith(b"\n\x032.0")  # field 1 (swagger) = "2.0"
    assert b"dev.example.fidelity.v1.Gizmo" in response.content
    swagger = requests.get(f"{cluster.url}/openapi/v2", timeout=10).json()
    assert swagger["swagger"] == "2.0"
    assert swagger["definitions"]["dev.example.fidelity.v1.Gizmo"]["properties"]["metadata"]["$ref"] == (
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_gets_custom_resources(cluster: EmulatedKubernetes, namespace: str, tmp_path: Any) -> None:
    requests.post(gizmos_url(cluster, namespace), json=gizmo("cli"), timeout=5)
    config = cluster.write_kubeconfig(tmp_path / "config", namespace=namespace)
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(config), "get", "gz"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "REGION", "READY", "AGE"]
    assert row.split()[:2] == ["cli", "eu-west-1"]  # the absent phase and readiness print blank


# --- the runner, the request log, kmock's DSL -----------------------------------------------------


def test_kubeconfig_works_with_the_kubernetes_client(cluster: EmulatedKubernetes, tmp_path: Any) -> None:
    path = cluster.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox", namespace="team")
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
    api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))
    assert "default" in [item.metadata.name for item in api.list_namespace().items]
    _, active = kubernetes.config.list_kube_config_contexts(config_file=str(path))
    assert active["name"] == "sandbox" and active["context"]["namespace"] == "team"


def test_the_request_log_records_kubernetes_requests(cluster: EmulatedKubernetes, namespace: str) -> None:
    before = len(cluster.emulator.requests)
    requests.get(configmaps_url(cluster, namespace), timeout=5)
    logged = cluster.emulator.requests[before:]
    assert [(request.method, request.action, request.namespace) for request in logged] == [
        (kmock.method.GET, kmock.action.LIST, namespace)
    ]


def test_objects_seeded_into_kmock_get_server_metadata(cluster: EmulatedKubernetes, namespace: str) -> None:
    configmaps = kmock.resource("", "v1", "configmaps")

    def seed() -> None:
        cluster.emulator.objects[configmaps, namespace, "seeded"] = {"data": {"a": "1"}}

    cluster.call(seed)
    fetched = requests.get(configmaps_url(cluster, namespace, "seeded"), timeout=5).json()
    assert fetched["metadata"]["name"] == "seeded" and fetched["metadata"]["namespace"] == namespace
    assert fetched["metadata"]["uid"] and fetched["metadata"]["resourceVersion"].isdigit()
    assert fetched["data"] == {"a": "1"} and fetched["kind"] == "ConfigMap"


async def test_kmock_reactions_still_intercept_requests() -> None:
    configmaps = kmock.resource("", "v1", "configmaps")
    async with ApiServerEmulator() as emulator, kmock.Server(emulator) as server:
        emulator.resources.load_bundled()
        emulator[kmock.action.LIST, configmaps] << {"items": [], "intercepted": True}
        url = "/api/v1/namespaces/default/configmaps"
        created = await (await server.client.post(url, json={"metadata": {"name": "kept"}})).json()
        listed = await (await server.client.get(url)).json()
        fetched = await (await server.client.get(f"{url}/kept")).json()
    assert listed == {"items": [], "intercepted": True}
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert emulator.objects[configmaps, "default", "kept"]["metadata"]["name"] == "kept"


async def test_a_reaction_refusing_a_write_stores_nothing() -> None:
    configmaps = kmock.resource("", "v1", "configmaps")
    async with ApiServerEmulator() as emulator, kmock.Server(emulator) as server:
        emulator.resources.load_bundled()
        url = "/api/v1/namespaces/default/configmaps"
        created = await (await server.client.post(url, json={"metadata": {"name": "cm"}, "data": {"v": "1"}})).json()
        emulator[f"put {url}/cm"][:1] << 429 << {"kind": "Status", "code": 429, "reason": "TooManyRequests"}
        emulator[f"post {url}"][1:2] << kmock.Response(status=503, payload={"kind": "Status", "code": 503})
        replaced = {**created, "data": {"v": "2"}}
        refused = await server.client.put(f"{url}/cm", json=replaced)
        stored = emulator.objects[configmaps, "default", "cm"]
        after_refusal = (dict(stored["data"]), stored["metadata"]["resourceVersion"])
        accepted = await server.client.put(f"{url}/cm", json=replaced)
        refused_create = await server.client.post(url, json={"metadata": {"name": "second"}})
    assert refused.status == 429 and (await refused.json())["reason"] == "TooManyRequests"
    assert after_refusal == ({"v": "1"}, created["metadata"]["resourceVersion"])
    assert accepted.status == 200 and emulator.objects[configmaps, "default", "cm"]["data"] == {"v": "2"}
    assert refused_create.status == 503
    assert (configmaps, "default", "cm") in emulator.objects
    assert (configmaps, "default", "second") not in emulator.objects


# --- kopf -----------------------------------------------------------------------------------------


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _run_kopf(url: str, namespace: str, stop: threading.Event, ready: threading.Event) -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, insecure=True)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def provision(patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Provisioned"

    coroutine = kopf.operator(
        registry=registry, standalone=True, namespaces=[namespace], stop_flag=stop, ready_flag=ready
    )
    asyncio.run(coroutine)


def test_kopf_operator_patches_status(
    custom: kubernetes.client.CustomObjectsApi, cluster: EmulatedKubernetes, namespace: str
) -> None:
    errors = _ErrorCollector()
    logging.getLogger("kopf").addHandler(errors)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=_run_kopf, args=(cluster.url, namespace, stop, ready), daemon=True)
    thread.start()
    try:
        assert ready.wait(20), "kopf did not start"
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, gizmo("operated", replicas=2))

        def provisioned() -> dict[str, Any] | None:
            obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "operated")
            return obj if obj.get("status", {}).get("phase") == "Provisioned" else None

        obj = wait_until(provisioned, what="kopf to provision the object")
        assert obj["spec"] == {
            "environment": "dev",
            "environments": [{"name": "dev"}],
            "replicas": 2,
            "aws": {"region": "eu-west-1"},
        }
        assert obj["metadata"]["generation"] == 1
    finally:
        stop.set()
        thread.join(20)
        logging.getLogger("kopf").removeHandler(errors)
    assert not thread.is_alive()
    assert [record.getMessage() for record in errors.records] == []


def test_timestamps_are_rfc3339_utc(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    # Bracketed by the clock before and after, at the format's one-second resolution: a local-time or
    # offset mistake lands hours outside, and nothing here depends on how long the request takes.
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "when"}})
    after = datetime.datetime.now(datetime.UTC)
    assert created.metadata.creation_timestamp.utcoffset() == datetime.timedelta(0)
    assert before <= created.metadata.creation_timestamp <= after


def test_map_lists_refuse_duplicate_keys(cluster: EmulatedKubernetes, namespace: str) -> None:
    twice = gizmo("twice", environments=[{"name": "dev"}, {"name": "dev"}])
    answer = requests.post(gizmos_url(cluster, namespace), json=twice, timeout=5)
    assert answer.status_code == 422, answer.text
    cause = answer.json()["details"]["causes"][0]
    assert (cause["reason"], cause["field"]) == ("FieldValueDuplicate", "spec.environments[1]")
