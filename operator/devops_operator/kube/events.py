"""Kubernetes Events (core/v1) about the objects the operator manages.

Events are best-effort, as in kopf: a failure to post one is logged and never breaks a
reconciliation. Every message is redacted first (Events are readable by anyone who can
`kubectl describe` the object), then truncated.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import kubernetes.client

from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.conditions import rfc3339
from devops_operator.kube.redaction import redact

logger = logging.getLogger(__name__)

COMPONENT = "devops-operator"
EventType = Literal["Normal", "Warning"]
EVENT_TYPES: tuple[str, ...] = ("Normal", "Warning")

MAX_MESSAGE_CHARS = 1024  # the events.k8s.io limit on `note`; core/v1 stores what it is given
MAX_REASON_CHARS = 128
MAX_NAME_CHARS = 253
_TRUNCATED = "…"

_name_lock = threading.Lock()
_last_stamp = 0


def _unique_stamp() -> int:
    """Nanoseconds since the epoch, strictly increasing within the process (unique names)."""
    global _last_stamp
    with _name_lock:
        _last_stamp = max(time.time_ns(), _last_stamp + 1)
        return _last_stamp


def event_name(object_name: str) -> str:
    """`<object>.<hex nanoseconds>`, as kubectl and client-go name Events."""
    suffix = f".{_unique_stamp():x}"
    return f"{object_name[: MAX_NAME_CHARS - len(suffix)]}{suffix}"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(_TRUNCATED)] + _TRUNCATED


def object_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The involvedObject for an object, whether given as a full object or already a reference."""
    metadata = obj.get("metadata")
    source = metadata if isinstance(metadata, Mapping) else obj
    reference = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": source.get("name"),
        "namespace": source.get("namespace"),
        "uid": source.get("uid"),
        "resourceVersion": source.get("resourceVersion"),
    }
    return {key: value for key, value in reference.items() if value}


def _reporting_instance() -> str:
    # In a pod the hostname is the pod name; POD_NAME (downward API) wins when set.
    return (os.environ.get("POD_NAME") or socket.gethostname())[:128]


def build_event(
    obj_ref: Mapping[str, Any],
    type: EventType,
    reason: str,
    message: str,
    *,
    component: str = COMPONENT,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Event object to create (pure apart from its unique name)."""
    involved = object_reference(obj_ref)
    if not involved.get("name") or not involved.get("kind"):
        raise ValueError(f"an Event needs the involved object's kind and name, got {object_reference(obj_ref)!r}")
    moment = now or datetime.now(UTC)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(involved["name"]),
            # Events about cluster-scoped objects live in `default`, as kubectl expects.
            "namespace": involved.get("namespace") or "default",
        },
        "involvedObject": involved,
        "type": type,
        "reason": truncate(reason, MAX_REASON_CHARS),
        # Redact before truncating: a cut could split a secret so the pattern no longer matches it.
        "message": truncate(redact(message), MAX_MESSAGE_CHARS),
        "count": 1,
        "firstTimestamp": rfc3339(moment),
        "lastTimestamp": rfc3339(moment),
        "eventTime": rfc3339(moment, micro=True),
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": _reporting_instance(),
    }


def post_event(
    api: kubernetes.client.ApiClient,
    obj_ref: Mapping[str, Any],
    type: EventType,
    reason: str,
    message: str,
    *,
    component: str = COMPONENT,
) -> dict[str, Any] | None:
    """Post an Event; return it as stored, or None if it could not be posted (logged, not raised)."""
    try:
        if type not in EVENT_TYPES:
            raise ValueError(f"event type must be Normal or Warning, not {type!r}")
        event = build_event(obj_ref, type, reason, message, component=component)
        namespace = event["metadata"]["namespace"]
        created = call_json(
            api,
            "POST",
            f"/api/v1/namespaces/{namespace}/events",
            body=event,
            timeout=REQUEST_TIMEOUT,
        )
    except Exception as exc:  # best-effort by design: an Event must never fail a reconciliation
        # Only the reference: the object itself may carry secrets in its spec.
        logger.warning("Could not post %s event %r about %s: %s", type, reason, object_reference(obj_ref),
                       redact(str(exc)))
        return None
    return created if isinstance(created, dict) else event
