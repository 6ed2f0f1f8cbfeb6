"""ConfigMap-backed documents against the emulated Kubernetes API (kmock + fidelity layer)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import (
    CountingApiClient,
    call_json,
    kube_verb,
    new_api_client,
    request_count,
)
from devops_operator.kube.owners import MANAGED_BY_LABEL, adopt, owner_reference
from devops_operator.kube.store import (
    AppendLog,
    ConfigMapDocument,
    DocumentConflict,
    DocumentTooLarge,
    StoreError,
    TooManyEntries,
)
from devops_operator.sandbox.apiserver import EmulatedKubernetes

from support import wait_until


def configmap(api: CountingApiClient, ns: str, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = call_json(api, "GET", f"/api/v1/namespaces/{ns}/configmaps/{name}")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return result


def create_configmap(api: CountingApiClient, ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    result: dict[str, Any] = call_json(api, "POST", f"/api/v1/namespaces/{ns}/configmaps", body=body)
    return result


def test_read_of_a_missing_document_is_none(api: CountingApiClient, ns: str) -> None:
    assert ConfigMapDocument(api, ns, "nothing-here").read() is None


def test_first_update_creates_the_configmap_with_labels_and_owner(api: CountingApiClient, ns: str) -> None:
    owner = create_configmap(api, ns, "owner", {})
    doc = ConfigMapDocument(api, ns, "registry", "registry.json", owner=owner, labels={"team": "infra"})

    stored = doc.update(lambda current: {"resources": [], "seen": current})

    assert stored == {"resources": [], "seen": None}
    cm = configmap(api, ns, "registry")
    assert cm is not None
    assert cm["data"] == {"registry.json": '{"resources":[],"seen":null}'}  # compact JSON
    assert cm["metadata"]["namespace"] == ns
    assert cm["metadata"]["labels"] == {"team": "infra", MANAGED_BY_LABEL: "devops-operator"}
    (reference,) = cm["metadata"]["ownerReferences"]
    assert reference["uid"] == owner["metadata"]["uid"]
    assert reference["controller"] is True
    assert doc.read() == stored


def test_requests_are_counted_exactly(api: CountingApiClient, ns: str) -> None:
    doc = ConfigMapDocument(api, ns, "counted")
    before = request_count()

    doc.update(lambda _: {"n": 1})  # fresh: GET (404) + POST
    assert api.request_counts() == {"get": 1, "create": 1}
    doc.update(lambda d: {"n": d["n"] + 1})  # existing: GET + PUT
    assert api.request_counts() == {"get": 2, "create": 1, "update": 1}
    doc.update(lambda d: d)  # unchanged: GET only, nothing written
    assert api.request_counts() == {"get": 3, "create": 1, "update": 1}

    # The process-wide Prometheus counter saw the same five requests.
    assert request_count() - before == 5
    assert doc.read() == {"n": 2}


@pytest.mark.parametrize(
    ("method", "url", "verb"),
    [
        ("GET", "http://h/api/v1/namespaces/ns/configmaps/cm", "get"),
        ("GET", "http://h/api/v1/namespaces/ns/configmaps", "list"),
        ("GET", "http://h/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=5", "watch"),
        ("GET", "http://h/apis/devops.fractary.io/v1alpha1/infradeployments", "list"),
        ("GET", "http://h/api/v1/namespaces", "list"),
        ("GET", "http://h/api/v1/namespaces/ns", "get"),
        ("GET", "http://h/api/v1/namespaces/ns/status", "get"),
        ("POST", "http://h/api/v1/namespaces/ns/events", "create"),
        ("PUT", "http://h/api/v1/namespaces/ns/configmaps/cm", "update"),
        ("PATCH", "http://h/apis/apps/v1/namespaces/ns/deployments/d/status", "patch"),
        ("DELETE", "http://h/apis/batch/v1/namespaces/ns/jobs/j", "delete"),
        ("DELETE", "http://h/apis/batch/v1/namespaces/ns/jobs", "deletecollection"),
    ],
)
def test_requests_are_counted_by_kubernetes_verb(method: str, url: str, verb: str) -> None:
    assert kube_verb(method, url) == verb


def test_concurrent_appends_from_two_clients_lose_nothing(kube_url: str, ns: str) -> None:
    per_writer = 50
    start = threading.Barrier(2)
    logs: list[AppendLog] = []
    clients: list[CountingApiClient] = []
    errors: list[BaseException] = []

    def writer(writer_id: int) -> None:
        client = new_api_client(kube_url)  # separate ApiClient (own connection pool) per writer
        log = AppendLog(api=client, namespace=ns, name="issue-log", max_attempts=50)
        clients.append(client)
        logs.append(log)
        start.wait()
        try:
            for seq in range(per_writer):
                log.append({"writer": writer_id, "seq": seq})
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(writer_id,)) for writer_id in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    entries = logs[0].entries()
    assert len(entries) == 2 * per_writer
    for writer_id in (1, 2):
        # All entries are present, and each writer's entries are in its own order.
        assert [e["seq"] for e in entries if e["writer"] == writer_id] == list(range(per_writer))
    conflicts = sum(log.document.conflicts for log in logs)
    writes = sum(c.request_counts().get("update", 0) + c.request_counts().get("create", 0) for c in clients)
    assert writes == 2 * per_writer + conflicts  # every lost race was one refused write, then retried
    print(f"{conflicts} conflicts retried for {2 * per_writer} appends")
    assert conflicts > 0, "two writers racing on one ConfigMap should have hit 409 at least once"
    for client in clients:
        client.close()


def test_a_stale_write_is_refused_then_retried_not_lost(api: CountingApiClient, kube_url: str, ns: str) -> None:
    doc = ConfigMapDocument(api, ns, "remediation-log")
    doc.update(lambda _: {"entries": ["first"]})
    other = ConfigMapDocument(new_api_client(kube_url), ns, "remediation-log")
    calls: list[Any] = []

    def append_second(current: dict[str, Any]) -> dict[str, Any]:
        calls.append(json.loads(json.dumps(current)))
        if len(calls) == 1:
            # Another writer gets in between our read and our write: our resourceVersion goes stale.
            other.update(lambda d: {"entries": [*d["entries"], "concurrent"]})
        return {"entries": [*current["entries"], "second"]}

    stored = doc.update(append_second)

    assert doc.conflicts == 1
    assert calls == [{"entries": ["first"]}, {"entries": ["first", "concurrent"]}]
    assert stored == {"entries": ["first", "concurrent", "second"]}
    assert doc.read() == stored


def test_the_emulator_refuses_a_stale_resource_version(api: CountingApiClient, ns: str) -> None:
    # The precondition the store relies on: a PUT carrying an old resourceVersion gets 409.
    doc = ConfigMapDocument(api, ns, "stale")
    doc.update(lambda _: {"v": 1})
    stale = configmap(api, ns, "stale")
    doc.update(lambda _: {"v": 2})
    assert stale is not None
    with pytest.raises(ApiException) as refused:
        call_json(api, "PUT", f"/api/v1/namespaces/{ns}/configmaps/stale", body=stale)
    assert refused.value.status == 409
    assert doc.read() == {"v": 2}


def test_rotation_by_count_keeps_the_newest_and_counts_the_rotated(api: CountingApiClient, ns: str) -> None:
    log = AppendLog(api, ns, "audit-trail", max_entries=5)
    for seq in range(8):
        log.append({"seq": seq})
    stored = log.read()
    assert [e["seq"] for e in stored["entries"]] == [3, 4, 5, 6, 7]
    assert stored["rotated"] == 3


def test_rotation_by_size_keeps_the_newest_under_the_byte_limit(api: CountingApiClient, ns: str) -> None:
    max_bytes, appends = 3_000, 20
    log = AppendLog(api, ns, "big-log", max_entries=1_000, max_bytes=max_bytes)
    for seq in range(appends):
        log.append({"seq": seq, "text": "x" * 300})
    stored = log.read()
    seqs = [e["seq"] for e in stored["entries"]]
    assert seqs == list(range(appends - len(seqs), appends))  # a contiguous run of the newest
    assert stored["rotated"] == appends - len(seqs) > 0
    cm = configmap(api, ns, "big-log")
    assert cm is not None
    # Measured on what was sent; the server's own metadata (a new resourceVersion) may add a few bytes.
    assert len(json.dumps(cm, separators=(",", ":"), ensure_ascii=False).encode()) <= max_bytes + 100


def test_over_limit_without_rotation_raises_and_changes_nothing(api: CountingApiClient, ns: str) -> None:
    doc = ConfigMapDocument(api, ns, "bounded", max_bytes=2_000)
    doc.update(lambda _: {"items": ["small"]})
    before = configmap(api, ns, "bounded")
    writes_before = api.request_counts().get("update", 0)

    with pytest.raises(DocumentTooLarge) as too_large:
        doc.update(lambda d: {"items": [*d["items"], "y" * 5_000]})

    message = str(too_large.value)
    assert f"{ns}/bounded" in message and "2000-byte limit" in message
    assert too_large.value.size > too_large.value.limit == 2_000
    after = configmap(api, ns, "bounded")
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == before["data"]
    assert api.request_counts().get("update", 0) == writes_before  # no write was even attempted


def test_a_rotation_that_does_not_shrink_stops_and_raises(api: CountingApiClient, ns: str) -> None:
    doc = ConfigMapDocument(api, ns, "stubborn", max_bytes=1_000)
    rotations: list[int] = []

    def no_progress(document: Any, overflow: int) -> Any:
        rotations.append(overflow)
        return document

    with pytest.raises(DocumentTooLarge):
        doc.update(lambda _: {"blob": "z" * 3_000}, rotate=no_progress)
    assert len(rotations) == 1  # asked once, made no progress, gave up
    assert configmap(api, ns, "stubborn") is None  # nothing created either


def test_rendered_keys_are_written_in_the_same_put_and_counted(api: CountingApiClient, ns: str) -> None:
    def render(document: Any) -> dict[str, str]:
        rows = "\n".join(f"- {item}" for item in document["resources"])
        return {"DEPLOYED.md": f"# Deployed resources\n\n{rows}\n"}

    doc = ConfigMapDocument(api, ns, "deployed", "registry.json", render=render, max_bytes=3_000)
    doc.update(lambda _: {"resources": ["aws_s3_bucket.logs"]})
    writes_before = api.request_counts().get("update", 0)
    doc.update(lambda d: {"resources": [*d["resources"], "aws_sqs_queue.jobs"]})

    assert api.request_counts().get("update", 0) == writes_before + 1  # one atomic PUT for both keys
    cm = configmap(api, ns, "deployed")
    assert cm is not None
    assert json.loads(cm["data"]["registry.json"]) == {"resources": ["aws_s3_bucket.logs", "aws_sqs_queue.jobs"]}
    assert cm["data"]["DEPLOYED.md"] == "# Deployed resources\n\n- aws_s3_bucket.logs\n- aws_sqs_queue.jobs\n"

    # The rendered keys count towards the limit: a document that fits alone is refused with them.
    big = {"resources": [f"aws_instance.node{i:02d}" for i in range(80)]}
    ConfigMapDocument(api, ns, "deployed-plain", "registry.json", max_bytes=3_000).update(lambda _: big)
    with pytest.raises(DocumentTooLarge):
        doc.update(lambda _: big)
    assert doc.read() == {"resources": ["aws_s3_bucket.logs", "aws_sqs_queue.jobs"]}


def test_a_document_that_is_not_json_is_never_overwritten(api: CountingApiClient, ns: str) -> None:
    create_configmap(api, ns, "hand-edited", {"document.json": "{not json", "other": "kept"})
    doc = ConfigMapDocument(api, ns, "hand-edited")
    with pytest.raises(StoreError, match="not valid JSON"):
        doc.update(lambda _: {"fresh": True})
    cm = configmap(api, ns, "hand-edited")
    assert cm is not None and cm["data"] == {"document.json": "{not json", "other": "kept"}


def test_other_keys_of_the_configmap_are_preserved(api: CountingApiClient, ns: str) -> None:
    create_configmap(api, ns, "shared", {"notes.txt": "written by someone else"})
    ConfigMapDocument(api, ns, "shared").update(lambda _: {"ok": True})
    cm = configmap(api, ns, "shared")
    assert cm is not None and cm["data"] == {
        "notes.txt": "written by someone else",
        "document.json": '{"ok":true}',
    }


def test_the_document_is_garbage_collected_with_its_owner(api: CountingApiClient, ns: str) -> None:
    owner = create_configmap(api, ns, "owner", {})
    ConfigMapDocument(api, ns, "owned", owner=owner).update(lambda _: {"x": 1})
    call_json(api, "DELETE", f"/api/v1/namespaces/{ns}/configmaps/owner")
    wait_until(lambda: configmap(api, ns, "owned") is None, timeout=10, what="the owned ConfigMap to be collected")


def test_adopt_refuses_cross_namespace_ownership_and_a_second_controller() -> None:
    # Pure (no server): the owner rules the store relies on when `owner=` is given.
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o", "namespace": "a", "uid": "u1"}}
    with pytest.raises(ValueError, match=r"namespace 'b'.*namespace 'a'"):
        adopt({"metadata": {"name": "child", "namespace": "b"}}, owner)
    child = adopt({"metadata": {"name": "child"}}, owner)
    assert child["metadata"]["namespace"] == "a"
    assert adopt(child, owner)["metadata"]["ownerReferences"] == [owner_reference(owner)]  # idempotent
    other = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "a", "uid": "u2"}}
    with pytest.raises(ValueError, match="already has a controller"):
        adopt(child, other)
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        owner_reference({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unsaved"}})


def test_an_append_log_never_replaces_data_of_another_shape(api: CountingApiClient, ns: str) -> None:
    other = ConfigMapDocument(api, ns, "shared", key="log.json")
    other.update(lambda _: ["someone", "else's", "list"])
    with pytest.raises(StoreError, match="not an append log"):
        AppendLog(api, ns, "shared").append({"event": "x"})
    assert other.read() == ["someone", "else's", "list"]


# -- retries: refusals (429/503), a deletion in between (404), conflicts until the attempts run out ----------
#
# Each test gets an API server of its own: the refusals are kmock reactions (a reaction answering a
# write with an error status refuses it before anything is stored, as a real API server does), and
# they must not outlive the test.

Refuse = Callable[[str, str, int, int | None], None]
STATUS_REASONS = {429: "TooManyRequests", 503: "ServiceUnavailable", 500: "InternalError"}


@pytest.fixture
def own_server() -> Iterator[EmulatedKubernetes]:
    with EmulatedKubernetes() as server:
        yield server


@pytest.fixture
def own_api(own_server: EmulatedKubernetes) -> Iterator[CountingApiClient]:
    client = new_api_client(own_server.url)
    yield client
    client.close()


@pytest.fixture
def refuse(own_server: EmulatedKubernetes) -> Refuse:
    """refuse(method, path, status, times): the next `times` such requests (None: all) get `status`."""

    def add(method: str, path: str, status: int, times: int | None) -> None:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                "reason": STATUS_REASONS[status], "message": "refused by the test"}

        def react() -> None:
            view = own_server.emulator[f"{method} {path}"]
            seen = len(view)  # a slice counts from the first such request ever logged: start after those
            view[seen : seen + times if times is not None else None] << status << body

        own_server.call(react)

    return add


CM_PATH = "/api/v1/namespaces/default/configmaps"


@pytest.mark.parametrize("status", [429, 503])
def test_a_refused_write_is_retried_and_applied_once(own_api: CountingApiClient, refuse: Refuse, status: int) -> None:
    log = AppendLog(own_api, "default", "issue-log")
    log.append({"seq": 0})
    refuse("put", f"{CM_PATH}/issue-log", status, 2)

    stored = log.append({"seq": 1})

    assert [e["seq"] for e in stored["entries"]] == [0, 1]
    assert log.entries() == [{"seq": 0}, {"seq": 1}]  # applied once, not once per attempt
    assert log.document.retried == {status: 2}
    # First append: GET (404) + POST. Second: three rounds of GET + PUT, two refused. Then the read.
    assert own_api.request_counts() == {"get": 5, "create": 1, "update": 3}


def test_a_refused_create_is_retried(own_api: CountingApiClient, refuse: Refuse) -> None:
    refuse("post", CM_PATH, 503, 1)

    ConfigMapDocument(own_api, "default", "registry").update(lambda _: {"resources": []})

    assert own_api.request_counts() == {"get": 2, "create": 2}
    assert ConfigMapDocument(own_api, "default", "registry").read() == {"resources": []}


def test_a_refused_read_is_retried(own_api: CountingApiClient, refuse: Refuse) -> None:
    doc = ConfigMapDocument(own_api, "default", "registry")
    doc.update(lambda _: {"n": 1})
    refuse("get", f"{CM_PATH}/registry", 429, 1)

    assert doc.update(lambda d: {"n": d["n"] + 1}) == {"n": 2}
    assert doc.retried == {429: 1}
    assert own_api.request_counts() == {"get": 3, "create": 1, "update": 1}


def test_a_server_error_is_not_retried(own_api: CountingApiClient, refuse: Refuse) -> None:
    # A 500 may come after the write was stored: retrying could append twice, so the caller decides.
    log = AppendLog(own_api, "default", "audit")
    log.append({"seq": 0})
    refuse("put", f"{CM_PATH}/audit", 500, 1)

    with pytest.raises(ApiException) as failed:
        log.append({"seq": 1})

    assert failed.value.status == 500
    assert own_api.request_counts() == {"get": 2, "create": 1, "update": 1}
    assert log.document.retried == {}


def test_a_document_deleted_between_read_and_write_is_created_again(api: CountingApiClient, ns: str) -> None:
    doc = ConfigMapDocument(api, ns, "remediation-log")
    doc.update(lambda _: {"entries": ["first"]})
    seen: list[Any] = []

    def append(current: dict[str, Any] | None) -> dict[str, Any]:
        seen.append(current)
        if len(seen) == 1:  # someone deletes it after our read: the PUT gets 404
            call_json(api, "DELETE", f"/api/v1/namespaces/{ns}/configmaps/remediation-log")
        return {"entries": [*((current or {}).get("entries") or []), "second"]}

    stored = doc.update(append)

    assert seen == [{"entries": ["first"]}, None]  # re-read: gone, so the change applies to nothing
    assert stored == {"entries": ["second"]} == doc.read()
    assert doc.retried == {404: 1}
    # GET+POST to start, then GET, PUT (404), DELETE (the other party's), GET (404), POST; then the read.
    assert api.request_counts() == {"get": 4, "create": 2, "update": 1, "delete": 1}


def test_conflicts_until_the_attempts_run_out_raise_and_lose_nothing(
    api: CountingApiClient, kube_url: str, ns: str
) -> None:
    doc = ConfigMapDocument(api, ns, "contended", max_attempts=3)
    doc.update(lambda _: {"entries": []})
    other = ConfigMapDocument(new_api_client(kube_url), ns, "contended")
    attempts: list[int] = []

    def append_ours(current: dict[str, Any]) -> dict[str, Any]:
        attempts.append(len(current["entries"]))
        # Every time, another writer gets in between our read and our write.
        other.update(lambda d: {"entries": [*d["entries"], f"theirs-{len(d['entries'])}"]})
        return {"entries": [*current["entries"], "ours"]}

    with pytest.raises(DocumentConflict) as gave_up:
        doc.update(append_ours)

    assert attempts == [0, 1, 2]
    assert doc.retried == {409: 3} and doc.conflicts == 3
    assert str(gave_up.value) == (
        f"ConfigMap {ns}/contended: gave up after 3 attempts (retried: 3x 409); nothing was written"
    )
    assert doc.read() == {"entries": ["theirs-0", "theirs-1", "theirs-2"]}  # theirs all kept, ours not half-written
    assert api.request_counts() == {"get": 5, "create": 1, "update": 3}


def test_refusals_until_the_attempts_run_out_write_nothing(own_api: CountingApiClient, refuse: Refuse) -> None:
    doc = ConfigMapDocument(own_api, "default", "busy", max_attempts=2)
    doc.update(lambda _: {"v": 1})
    refuse("put", f"{CM_PATH}/busy", 429, None)

    with pytest.raises(DocumentConflict, match=r"gave up after 2 attempts \(retried: 2x 429\)"):
        doc.update(lambda _: {"v": 2})

    assert doc.read() == {"v": 1}
    assert own_api.request_counts() == {"get": 4, "create": 1, "update": 2}


# -- extend() and the bounds ------------------------------------------------------------------------


def test_extend_past_max_entries_rotates_out_the_oldest_and_keeps_all_it_added(
    api: CountingApiClient, ns: str
) -> None:
    log = AppendLog(api, ns, "batched", max_entries=5)
    log.extend([{"seq": seq} for seq in range(3)])

    stored = log.extend([{"seq": seq} for seq in range(3, 7)])

    assert [e["seq"] for e in stored["entries"]] == [2, 3, 4, 5, 6]
    assert stored["rotated"] == 2
    stored = log.extend([{"seq": seq} for seq in range(7, 12)])  # exactly the bound: all older ones go
    assert [e["seq"] for e in stored["entries"]] == [7, 8, 9, 10, 11]
    assert stored["rotated"] == 7
    assert log.read() == stored


def test_extend_larger_than_the_bound_is_refused_before_any_request(api: CountingApiClient, ns: str) -> None:
    log = AppendLog(api, ns, "batched", max_entries=5)
    log.extend([{"seq": 0}])
    before = api.request_counts()

    with pytest.raises(TooManyEntries) as refused:
        log.extend([{"seq": seq} for seq in range(1, 7)])

    assert str(refused.value) == (
        f"ConfigMap {ns}/batched: 6 entries in one append exceed the log's bound of 5 (max_entries); "
        "append them in smaller batches or raise the bound; nothing was written"
    )
    assert api.request_counts() == before
    assert log.entries() == [{"seq": 0}]


def test_rotation_by_size_never_drops_what_is_being_appended(api: CountingApiClient, ns: str) -> None:
    log = AppendLog(api, ns, "sized", max_entries=1_000, max_bytes=3_000)
    log.extend([{"seq": seq, "text": "x" * 300} for seq in range(6)])

    stored = log.extend([{"seq": seq, "text": "y" * 300} for seq in range(6, 10)])

    seqs = [e["seq"] for e in stored["entries"]]
    assert seqs[-4:] == [6, 7, 8, 9]  # all four just appended
    assert seqs == list(range(10 - len(seqs), 10)) and stored["rotated"] == 10 - len(seqs) > 0
    before = configmap(api, ns, "sized")
    with pytest.raises(DocumentTooLarge):  # together they cannot fit: refused, not half-kept
        log.extend([{"seq": seq, "text": "z" * 300} for seq in range(10, 20)])
    assert configmap(api, ns, "sized") == before


def test_an_empty_extend_writes_nothing(api: CountingApiClient, ns: str) -> None:
    assert AppendLog(api, ns, "quiet").extend([]) == {"entries": [], "rotated": 0}
    assert api.request_counts() == {"get": 1}
