"""Kubernetes Events against the emulated API: posted about the right object, secrets redacted."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from devops_operator.kube.client import CountingApiClient, call_json, new_api_client
from devops_operator.kube.events import MAX_MESSAGE_CHARS, build_event, object_reference, post_event

SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example


@pytest.fixture
def involved(api: CountingApiClient, ns: str) -> dict[str, Any]:
    """A real object (read back with its uid) for Events to be about."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-app"}, "data": {}}
    created: dict[str, Any] = call_json(api, "POST", f"/api/v1/namespaces/{ns}/configmaps", body=body)
    return created


def events_in(api: CountingApiClient, ns: str) -> list[dict[str, Any]]:
    listing: dict[str, Any] = call_json(api, "GET", f"/api/v1/namespaces/{ns}/events")
    return list(listing.get("items") or [])


def test_event_is_stored_about_the_object_with_secrets_redacted(
    api: CountingApiClient, ns: str, involved: dict[str, Any]
) -> None:
    message = f"terraform apply failed: password=hunter2 aws_secret_access_key={SECRET_ACCESS_KEY}"

    posted = post_event(api, object_reference(involved), "Warning", "ApplyFailed", message)

    assert posted is not None
    (event,) = [e for e in events_in(api, ns) if e["metadata"]["name"] == posted["metadata"]["name"]]
    assert event["involvedObject"]["kind"] == "ConfigMap"
    assert event["involvedObject"]["name"] == "web-app"
    assert event["involvedObject"]["namespace"] == ns
    assert event["involvedObject"]["uid"] == involved["metadata"]["uid"]
    assert (event["type"], event["reason"]) == ("Warning", "ApplyFailed")
    assert "hunter2" not in event["message"] and SECRET_ACCESS_KEY not in event["message"]
    assert event["message"] == "terraform apply failed: password=*** aws_secret_access_key=***"
    assert event["reportingComponent"] == "devops-operator"
    assert event["source"] == {"component": "devops-operator"}
    assert re.fullmatch(r"web-app\.[0-9a-f]+", event["metadata"]["name"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["firstTimestamp"])
    assert event["lastTimestamp"] == event["firstTimestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["eventTime"])


def test_a_full_object_is_accepted_as_the_reference(api: CountingApiClient, ns: str, involved: dict[str, Any]) -> None:
    posted = post_event(api, involved, "Normal", "Created", "created")
    assert posted is not None
    assert posted["involvedObject"]["uid"] == involved["metadata"]["uid"]
    assert api.request_counts().get("create") == 2  # the object, then exactly one Event


def test_long_messages_are_truncated_after_redaction(api: CountingApiClient, ns: str) -> None:
    # The secret sits right at the cut: redacting first means no fragment of it survives.
    message = "x" * (MAX_MESSAGE_CHARS - 30) + f" {SECRET_ACCESS_KEY} " + "y" * 500
    posted = post_event(
        api,
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "namespace": ns},
        "Warning",
        "PlanFailed",
        message,
    )
    assert posted is not None
    (event,) = events_in(api, ns)
    assert len(event["message"]) == MAX_MESSAGE_CHARS
    assert event["message"].endswith("…")
    assert "wJalr" not in event["message"]


def test_event_names_are_unique(api: CountingApiClient, ns: str, involved: dict[str, Any]) -> None:
    names = {
        post_event(api, involved, "Normal", "Progressing", f"step {i}")["metadata"]["name"]  # type: ignore[index]
        for i in range(5)
    }
    assert len(names) == 5
    assert len(events_in(api, ns)) == 5


def test_events_about_cluster_scoped_objects_go_to_default(api: CountingApiClient) -> None:
    ref = {"apiVersion": "v1", "kind": "Namespace", "name": "team-a", "uid": "1234"}
    posted = post_event(api, ref, "Normal", "Observed", "namespace seen")
    assert posted is not None
    assert posted["metadata"]["namespace"] == "default"
    assert "namespace" not in posted["involvedObject"]


def test_failures_are_logged_never_raised(caplog: pytest.LogCaptureFixture, kube_url: str) -> None:
    unreachable = new_api_client("http://127.0.0.1:9")  # discard port: connection refused
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "namespace": "n"}
    with caplog.at_level(logging.WARNING, logger="devops_operator.kube.events"):
        assert post_event(unreachable, ref, "Warning", "ApplyFailed", "token=abc") is None
        assert post_event(new_api_client(kube_url), {"kind": "ConfigMap"}, "Normal", "R", "m") is None
        assert post_event(new_api_client(kube_url), ref, "Fatal", "R", "m") is None  # type: ignore[arg-type]
    assert len([r for r in caplog.records if "Could not post" in r.getMessage()]) == 3
    assert "abc" not in caplog.text


def test_build_event_timestamps() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 0, tzinfo=UTC)
    event = build_event({"kind": "Pod", "name": "p", "namespace": "n"}, "Normal", "R", "m", now=moment)
    assert event["firstTimestamp"] == "2024-05-01T12:00:00Z"
    # MicroTime needs its six fractional digits even when they are zero, or a real API server refuses it.
    assert event["eventTime"] == "2024-05-01T12:00:00.000000Z"


def test_a_failed_post_about_a_full_object_never_logs_its_spec(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = new_api_client("http://127.0.0.1:9")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n", "uid": "u-1"},
           "data": {"db_password": "hunter2"}, "spec": {"token": "s3cr3t-value"}}
    with caplog.at_level(logging.WARNING, logger="devops_operator.kube.events"):
        assert post_event(unreachable, obj, "Warning", "ApplyFailed", "failed") is None
    assert "Could not post" in caplog.text and "'name': 'c'" in caplog.text
    assert "hunter2" not in caplog.text and "s3cr3t-value" not in caplog.text
