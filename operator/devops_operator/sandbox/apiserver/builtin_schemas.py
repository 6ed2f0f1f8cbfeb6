"""OpenAPI v3 schemas of the built-in kinds the sandbox is used with, and of ObjectMeta.

They are published in ``/openapi/v3`` (for ``kubectl explain`` and kubectl's field-validation
check) and used to prune and check unknown fields of those kinds, like the typed decoding of a real
API server. Parts this emulator does not model in full (a Pod's spec) keep unknown fields
(``x-kubernetes-preserve-unknown-fields``), so nothing a client sends is lost.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
PATCH = f"{META}.Patch"
STATUS = f"{META}.Status"
PRESERVE = "x-kubernetes-preserve-unknown-fields"


def ref(name: str, description: str = "") -> Schema:
    """A reference as kube-apiserver publishes it in v3: wrapped in allOf so it can carry a description."""
    schema: Schema = {"allOf": [{"$ref": f"#/components/schemas/{name}"}]}
    if description:
        schema["description"] = description
    return schema


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def integer(description: str, fmt: str = "int32") -> Schema:
    return {"type": "integer", "format": fmt, "description": description}


def boolean(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def timestamp(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def string_map(description: str, fmt: str = "") -> Schema:
    items: Schema = {"type": "string", "format": fmt} if fmt else {"type": "string"}
    return {"type": "object", "additionalProperties": items, "description": description}


def array(items: Schema, description: str, **extra: Any) -> Schema:
    return {"type": "array", "items": items, "description": description, **extra}


def obj(description: str, properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def open_object(description: str) -> Schema:
    """An object this emulator does not model field by field: kept as sent."""
    return {"type": "object", "description": description, PRESERVE: True}


OBJECT_META_SCHEMA = obj(
    "Metadata every persisted object has, users set some of it and the server the rest.",
    {
        "name": string("Unique within a namespace; required when creating, unless generateName is set."),
        "generateName": string("Prefix the server completes with a random suffix when name is empty."),
        "namespace": string("The namespace the object lives in; empty for cluster-scoped objects."),
        "selfLink": string("Deprecated and never set."),
        "uid": string("Unique in time and space, set by the server on creation."),
        "resourceVersion": string("Opaque version of the object, for optimistic concurrency and watches."),
        "generation": integer("Sequence number of the desired state, set by the server.", "int64"),
        "creationTimestamp": timestamp("When the server created the object (RFC 3339, UTC)."),
        "deletionTimestamp": timestamp("When the object was asked to be deleted; set by the server."),
        "deletionGracePeriodSeconds": integer("Seconds allowed for graceful termination.", "int64"),
        "labels": string_map("Key/value pairs that selectors match."),
        "annotations": string_map("Key/value pairs for tools and controllers (not for selection)."),
        "ownerReferences": array(
            obj(
                "An object this one depends on; when all owners are gone, it is garbage-collected.",
                {
                    "apiVersion": string("API version of the owner."),
                    "kind": string("Kind of the owner."),
                    "name": string("Name of the owner."),
                    "uid": string("UID of the owner."),
                    "controller": boolean("Whether the owner is the managing controller."),
                    "blockOwnerDeletion": boolean("Whether the owner waits for this object in foreground deletion."),
                },
                ("apiVersion", "kind", "name", "uid"),
            ),
            "Objects this one depends on.",
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]},
        ),
        "finalizers": array(
            {"type": "string"},
            "Must be empty before the object is removed from storage.",
            **{"x-kubernetes-list-type": "set"},
        ),
        "managedFields": array(open_object("Which manager owns which fields."), "Field ownership."),
    },
)
OBJECT_META_FIELDS = frozenset(OBJECT_META_SCHEMA["properties"])

LIST_META_SCHEMA = obj(
    "Metadata of a list.",
    {
        "resourceVersion": string("The resourceVersion the list was read at."),
        "continue": string("Token for the next chunk, when the list was limited."),
        "remainingItemCount": integer("How many items the rest of the list has.", "int64"),
        "selfLink": string("Deprecated and never set."),
    },
)
PATCH_SCHEMA: Schema = {"type": "object", "description": "A patch document, in the request's content type."}


def _kind_schema(description: str, properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return obj(
        description,
        {
            "apiVersion": string("The versioned schema of this representation of an object."),
            "kind": string("The REST resource this object represents, in CamelCase."),
            "metadata": ref(OBJECT_META, "Standard object's metadata."),
            **properties,
        },
        required,
    )


_CONDITIONS = array(open_object("A condition of the object."), "The latest observations of its state.")
_POD_TEMPLATE = open_object("The pod that will be created (metadata and spec).")
_SELECTOR = open_object("A label query over a set of resources.")

# (group, version, kind) -> schema
SCHEMAS: dict[tuple[str, str, str], Schema] = {
    ("", "v1", "ConfigMap"): _kind_schema(
        "Configuration data for pods to consume.",
        {
            "data": string_map("Configuration data as UTF-8 strings."),
            "binaryData": string_map("Binary configuration data, base64-encoded in JSON.", "byte"),
            "immutable": boolean("When true, data cannot be changed after creation."),
        },
    ),
    ("", "v1", "Secret"): _kind_schema(
        "Sensitive data such as passwords, tokens or keys.",
        {
            "data": string_map("Secret values, base64-encoded in JSON.", "byte"),
            "stringData": string_map("Write-only convenience: plain values merged into data on write."),
            "type": string("How the data is used: Opaque (default), kubernetes.io/tls, ..."),
            "immutable": boolean("When true, data cannot be changed after creation."),
        },
    ),
    ("", "v1", "Namespace"): _kind_schema(
        "A scope for names; the unit of isolation of most objects.",
        {
            "spec": obj("What the namespace should be.", {"finalizers": array({"type": "string"}, "Finalizers.")}),
            "status": obj(
                "What the namespace is.",
                {"phase": string("Active or Terminating.", enum=["Active", "Terminating"]), "conditions": _CONDITIONS},
            ),
        },
    ),
    ("", "v1", "ServiceAccount"): _kind_schema(
        "An identity for processes that run in a pod.",
        {
            "secrets": array(open_object("A reference to a Secret."), "Secrets this account may use."),
            "imagePullSecrets": array(open_object("A reference to a Secret."), "Secrets for pulling images."),
            "automountServiceAccountToken": boolean("Whether pods mount the account's API token."),
        },
    ),
    ("", "v1", "Event"): _kind_schema(
        "A report of something that happened to an object.",
        {
            "involvedObject": obj(
                "The object this event is about.",
                {
                    name: string(text)
                    for name, text in {
                        "kind": "Kind of the object.",
                        "namespace": "Namespace of the object.",
                        "name": "Name of the object.",
                        "uid": "UID of the object.",
                        "apiVersion": "API version of the object.",
                        "resourceVersion": "The object's resourceVersion the event is about.",
                        "fieldPath": "Part of the object the event is about, e.g. a container.",
                    }.items()
                },
            ),
            "reason": string("Short, machine-readable reason for the transition, in CamelCase."),
            "message": string("Human-readable description of what happened."),
            "source": obj("Who reported it.", {"component": string("Component."), "host": string("Host.")}),
            "firstTimestamp": timestamp("When the event was first recorded."),
            "lastTimestamp": timestamp("When the most recent occurrence was recorded."),
            "count": integer("How many times it happened."),
            "type": string("Normal or Warning."),
            "eventTime": {"type": "string", "format": "date-time", "description": "When it first happened (micro)."},
            "series": open_object("Data about an event series."),
            "action": string("What action was taken or failed."),
            "related": open_object("A secondary object."),
            "reportingComponent": string("The controller that emitted the event."),
            "reportingInstance": string("The instance of that controller."),
        },
        ("metadata", "involvedObject"),
    ),
    ("batch", "v1", "Job"): _kind_schema(
        "A run-to-completion task: pods until enough of them succeed.",
        {
            "spec": obj(
                "What the job should do.",
                {
                    "parallelism": integer("Pods running at once."),
                    "completions": integer("Successful pods needed."),
                    "activeDeadlineSeconds": integer("Seconds before the job is stopped.", "int64"),
                    "backoffLimit": integer("Retries before the job is Failed."),
                    "selector": _SELECTOR,
                    "manualSelector": boolean("Whether the selector is managed by the user."),
                    "template": _POD_TEMPLATE,
                    "ttlSecondsAfterFinished": integer("Seconds after finishing before the job is deleted."),
                    "completionMode": string("NonIndexed or Indexed."),
                    "suspend": boolean("Whether the job's pods are suspended."),
                    "podFailurePolicy": open_object("How pod failures count."),
                    "successPolicy": open_object("When the job counts as succeeded."),
                    "backoffLimitPerIndex": integer("Retries per index (Indexed jobs)."),
                    "maxFailedIndexes": integer("Failed indexes before the job is Failed."),
                    "podReplacementPolicy": string("When replacement pods are created."),
                    "managedBy": string("The controller that manages the job."),
                },
                ("template",),
            ),
            "status": obj(
                "What the job has done.",
                {
                    "conditions": _CONDITIONS,
                    "startTime": timestamp("When the job started."),
                    "completionTime": timestamp("When the job completed."),
                    "active": integer("Pods running."),
                    "succeeded": integer("Pods that succeeded."),
                    "failed": integer("Pods that failed."),
                    "terminating": integer("Pods terminating."),
                    "ready": integer("Pods ready."),
                    "completedIndexes": string("Indexes completed (Indexed jobs)."),
                    "failedIndexes": string("Indexes failed (Indexed jobs)."),
                    "uncountedTerminatedPods": open_object("Pods not yet counted."),
                },
            ),
        },
    ),
    ("", "v1", "Pod"): _kind_schema(
        "A group of containers scheduled together on a node.",
        {
            "spec": open_object("What the pod should run."),
            "status": obj(
                "What the pod is doing.",
                {
                    "phase": string("Pending, Running, Succeeded, Failed or Unknown."),
                    "conditions": _CONDITIONS,
                    "message": string("Why the pod is in this state."),
                    "reason": string("Brief CamelCase reason, e.g. Evicted."),
                    "hostIP": string("IP of the node."),
                    "podIP": string("IP of the pod."),
                    "podIPs": array(open_object("An IP of the pod."), "IPs of the pod."),
                    "startTime": timestamp("When the kubelet acknowledged the pod."),
                    "initContainerStatuses": array(open_object("A container's state."), "Init containers."),
                    "containerStatuses": array(open_object("A container's state."), "Containers."),
                    "ephemeralContainerStatuses": array(open_object("A container's state."), "Ephemeral ones."),
                    "qosClass": string("Quality of service class."),
                    "nominatedNodeName": string("Node the scheduler has nominated."),
                },
            ),
        },
    ),
    ("coordination.k8s.io", "v1", "Lease"): _kind_schema(
        "A lease: who holds a lock, and until when.",
        {
            "spec": obj(
                "The lease.",
                {
                    "holderIdentity": string("Who holds it."),
                    "leaseDurationSeconds": integer("How long a holder keeps it without renewing."),
                    "acquireTime": {"type": "string", "format": "date-time", "description": "When acquired."},
                    "renewTime": {"type": "string", "format": "date-time", "description": "When last renewed."},
                    "leaseTransitions": integer("How many times it changed holders."),
                    "strategy": string("How the holder is chosen."),
                    "preferredHolder": string("The holder the strategy prefers."),
                },
            ),
        },
    ),
}

# Schemas every group-version document carries, for the references above.
SHARED_DEFINITIONS: dict[str, Schema] = {
    OBJECT_META: OBJECT_META_SCHEMA,
    LIST_META: LIST_META_SCHEMA,
    PATCH: PATCH_SCHEMA,
}


def generic_schema(kind: str) -> Schema:
    """For built-in kinds without a schema here: any fields, kept as sent."""
    schema = _kind_schema(f"A {kind} (not modelled field by field by the emulator).", {})
    schema[PRESERVE] = True
    return schema
