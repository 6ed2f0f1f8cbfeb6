"""Kubernetes objects in protobuf, as kubectl's typed clients send them (``kubectl create secret ...``).

A body is the ``k8s\\x00`` magic followed by a ``runtime.Unknown`` envelope: the object's
apiVersion and kind, and its own message bytes. The messages of the built-in kinds that kubectl's
generator commands create are tabled below by field number (the numbers of the Kubernetes API's
``generated.proto`` files); an object is read into the JSON form the rest of the server uses.

Go's protobuf code writes every non-pointer field, empty or not, and JSON omits the empty ones:
so do we, except for the pointer fields listed in ``_ZERO_IS_A_VALUE`` (``replicas: 0`` matters).
A field this table does not know is refused with 400, never silently dropped.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Mapping
from typing import Any

from devops_operator.sandbox.apiserver import protowire

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# message -> field number -> (JSON name, type); types: scalars, message names, "[]T", "map<K,V>".
MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "string"),
        4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
        4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
        7: ("generation", "int64"), 8: ("creationTimestamp", "Time"), 9: ("deletionTimestamp", "Time"),
        10: ("deletionGracePeriodSeconds", "int64"), 11: ("labels", "map<string,string>"),
        12: ("annotations", "map<string,string>"), 13: ("ownerReferences", "[]OwnerReference"),
        14: ("finalizers", "[]string"), 17: ("managedFields", "[]ManagedFieldsEntry")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
        5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "ManagedFieldsEntry": {1: ("manager", "string"), 2: ("operation", "string"), 3: ("apiVersion", "string"),
        4: ("time", "Time"), 6: ("fieldsType", "string"), 7: ("fieldsV1", "FieldsV1"),
        8: ("subresource", "string")},
    "FieldsV1": {1: ("Raw", "bytes")},
    "Time": {1: ("seconds", "int64"), 2: ("nanos", "int32")},
    "LabelSelector": {1: ("matchLabels", "map<string,string>"),
        2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    "Quantity": {1: ("string", "string")},
    "IntOrString": {1: ("type", "int64"), 2: ("intVal", "int32"), 3: ("strVal", "string")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map<string,bytes>"), 3: ("type", "string"),
        4: ("stringData", "map<string,string>"), 5: ("immutable", "bool")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map<string,string>"),
        3: ("binaryData", "map<string,bytes>"), 4: ("immutable", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "NamespaceStatus": {1: ("phase", "string"), 2: ("conditions", "[]NamespaceCondition")},
    "NamespaceCondition": {1: ("type", "string"), 2: ("status", "string"), 4: ("lastTransitionTime", "Time"),
        5: ("reason", "string"), 6: ("message", "string")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "[]ObjectReference"),
        3: ("imagePullSecrets", "[]LocalObjectReference"), 4: ("automountServiceAccountToken", "bool")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
        4: ("uid", "string"), 5: ("apiVersion", "string"), 6: ("resourceVersion", "string"),
        7: ("fieldPath", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "ServiceStatus")},
    "ServiceSpec": {1: ("ports", "[]ServicePort"), 2: ("selector", "map<string,string>"),
        3: ("clusterIP", "string"), 4: ("type", "string"), 5: ("externalIPs", "[]string"),
        7: ("sessionAffinity", "string"), 8: ("loadBalancerIP", "string"),
        9: ("loadBalancerSourceRanges", "[]string"), 10: ("externalName", "string"),
        11: ("externalTrafficPolicy", "string"), 12: ("healthCheckNodePort", "int32"),
        13: ("publishNotReadyAddresses", "bool"), 17: ("ipFamilyPolicy", "string"), 18: ("clusterIPs", "[]string"),
        19: ("ipFamilies", "[]string"), 20: ("allocateLoadBalancerNodePorts", "bool"),
        21: ("loadBalancerClass", "string"), 22: ("internalTrafficPolicy", "string"),
        23: ("trafficDistribution", "string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int32"),
        4: ("targetPort", "IntOrString"), 5: ("nodePort", "int32"), 6: ("appProtocol", "string")},
    "ServiceStatus": {1: ("loadBalancer", "LoadBalancerStatus")},
    "LoadBalancerStatus": {},
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "JobStatus")},
    "JobSpec": {1: ("parallelism", "int32"), 2: ("completions", "int32"), 3: ("activeDeadlineSeconds", "int64"),
        4: ("selector", "LabelSelector"), 5: ("manualSelector", "bool"), 6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", "int32"), 8: ("ttlSecondsAfterFinished", "int32"), 9: ("completionMode", "string"),
        10: ("suspend", "bool"), 12: ("backoffLimitPerIndex", "int32"), 13: ("maxFailedIndexes", "int32"),
        14: ("podReplacementPolicy", "string"), 15: ("managedBy", "string")},
    "JobStatus": {1: ("conditions", "[]JobCondition"), 2: ("startTime", "Time"), 3: ("completionTime", "Time"),
        4: ("active", "int32"), 5: ("succeeded", "int32"), 6: ("failed", "int32"),
        7: ("completedIndexes", "string"), 9: ("ready", "int32"), 10: ("failedIndexes", "string"),
        11: ("terminating", "int32")},
    "JobCondition": {1: ("type", "string"), 2: ("status", "string"), 3: ("lastProbeTime", "Time"),
        4: ("lastTransitionTime", "Time"), 5: ("reason", "string"), 6: ("message", "string")},
    "CronJob": {1: ("metadata", "ObjectMeta"), 2: ("spec", "CronJobSpec"), 3: ("status", "CronJobStatus")},
    "CronJobSpec": {1: ("schedule", "string"), 2: ("startingDeadlineSeconds", "int64"),
        3: ("concurrencyPolicy", "string"), 4: ("suspend", "bool"), 5: ("jobTemplate", "JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", "int32"), 7: ("failedJobsHistoryLimit", "int32"),
        8: ("timeZone", "string")},
    "CronJobStatus": {1: ("active", "[]ObjectReference"), 4: ("lastScheduleTime", "Time"),
        5: ("lastSuccessfulTime", "Time")},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "DeploymentStatus")},
    "DeploymentSpec": {1: ("replicas", "int32"), 2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"), 4: ("strategy", "DeploymentStrategy"), 5: ("minReadySeconds", "int32"),
        6: ("revisionHistoryLimit", "int32"), 7: ("paused", "bool"), 9: ("progressDeadlineSeconds", "int32")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString"), 2: ("maxSurge", "IntOrString")},
    "DeploymentStatus": {1: ("observedGeneration", "int64"), 2: ("replicas", "int32"),
        3: ("updatedReplicas", "int32"), 4: ("availableReplicas", "int32"), 5: ("unavailableReplicas", "int32"),
        6: ("conditions", "[]DeploymentCondition"), 7: ("readyReplicas", "int32"), 8: ("collisionCount", "int32"),
        9: ("terminatingReplicas", "int32")},
    "DeploymentCondition": {1: ("type", "string"), 2: ("status", "string"), 4: ("reason", "string"),
        5: ("message", "string"), 6: ("lastUpdateTime", "Time"), 7: ("lastTransitionTime", "Time")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {1: ("volumes", "[]Volume"), 2: ("containers", "[]Container"), 3: ("restartPolicy", "string"),
        4: ("terminationGracePeriodSeconds", "int64"), 5: ("activeDeadlineSeconds", "int64"),
        6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map<string,string>"), 8: ("serviceAccountName", "string"),
        9: ("serviceAccount", "string"), 10: ("nodeName", "string"), 11: ("hostNetwork", "bool"),
        12: ("hostPID", "bool"), 13: ("hostIPC", "bool"), 15: ("imagePullSecrets", "[]LocalObjectReference"),
        16: ("hostname", "string"), 17: ("subdomain", "string"), 19: ("schedulerName", "string"),
        20: ("initContainers", "[]Container"), 21: ("automountServiceAccountToken", "bool"),
        24: ("priorityClassName", "string"), 25: ("priority", "int32"), 27: ("shareProcessNamespace", "bool"),
        29: ("runtimeClassName", "string"), 30: ("enableServiceLinks", "bool"), 31: ("preemptionPolicy", "string"),
        32: ("overhead", "map<string,Quantity>"), 35: ("setHostnameAsFQDN", "bool"), 37: ("hostUsers", "bool"),
        40: ("resources", "ResourceRequirements"), 41: ("hostnameOverride", "string")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"),
        4: ("args", "[]string"), 5: ("workingDir", "string"), 6: ("ports", "[]ContainerPort"),
        7: ("env", "[]EnvVar"), 8: ("resources", "ResourceRequirements"), 9: ("volumeMounts", "[]VolumeMount"),
        13: ("terminationMessagePath", "string"), 14: ("imagePullPolicy", "string"), 16: ("stdin", "bool"),
        17: ("stdinOnce", "bool"), 18: ("tty", "bool"), 19: ("envFrom", "[]EnvFromSource"),
        20: ("terminationMessagePolicy", "string"), 24: ("restartPolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int32"), 3: ("containerPort", "int32"),
        4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string"), 3: ("valueFrom", "EnvVarSource")},
    "EnvVarSource": {1: ("fieldRef", "ObjectFieldSelector"), 2: ("resourceFieldRef", "ResourceFieldSelector"),
        3: ("configMapKeyRef", "ConfigMapKeySelector"), 4: ("secretKeyRef", "SecretKeySelector")},
    "ConfigMapKeySelector": {1: ("localObjectReference", "LocalObjectReference"), 2: ("key", "string"),
        3: ("optional", "bool")},
    "SecretKeySelector": {1: ("localObjectReference", "LocalObjectReference"), 2: ("key", "string"),
        3: ("optional", "bool")},
    "ObjectFieldSelector": {1: ("apiVersion", "string"), 2: ("fieldPath", "string")},
    "ResourceFieldSelector": {1: ("containerName", "string"), 2: ("resource", "string"),
        3: ("divisor", "Quantity")},
    "EnvFromSource": {1: ("prefix", "string"), 2: ("configMapRef", "ConfigMapEnvSource"),
        3: ("secretRef", "SecretEnvSource")},
    "ConfigMapEnvSource": {1: ("localObjectReference", "LocalObjectReference"), 2: ("optional", "bool")},
    "SecretEnvSource": {1: ("localObjectReference", "LocalObjectReference"), 2: ("optional", "bool")},
    "ResourceRequirements": {1: ("limits", "map<string,Quantity>"), 2: ("requests", "map<string,Quantity>"),
        3: ("claims", "[]ResourceClaim")},
    "ResourceClaim": {1: ("name", "string"), 2: ("request", "string")},
    "VolumeMount": {1: ("name", "string"), 2: ("readOnly", "bool"), 3: ("mountPath", "string"),
        4: ("subPath", "string"), 5: ("mountPropagation", "string"), 6: ("subPathExpr", "string"),
        7: ("recursiveReadOnly", "string"), 8: ("bindMountOptions", "[]string")},
    "Volume": {1: ("name", "string"), 2: ("volumeSource", "VolumeSource")},
    "VolumeSource": {2: ("emptyDir", "EmptyDirVolumeSource"), 6: ("secret", "SecretVolumeSource"),
        10: ("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource"),
        19: ("configMap", "ConfigMapVolumeSource")},
    "EmptyDirVolumeSource": {1: ("medium", "string"), 2: ("sizeLimit", "Quantity"), 3: ("mode", "int32")},
    "SecretVolumeSource": {1: ("secretName", "string"), 2: ("items", "[]KeyToPath"), 3: ("defaultMode", "int32"),
        4: ("optional", "bool"), 5: ("defaultUser", "int64")},
    "ConfigMapVolumeSource": {1: ("localObjectReference", "LocalObjectReference"), 2: ("items", "[]KeyToPath"),
        3: ("defaultMode", "int32"), 4: ("optional", "bool"), 5: ("defaultUser", "int64")},
    "KeyToPath": {1: ("key", "string"), 2: ("path", "string"), 3: ("mode", "int32"), 4: ("user", "int64")},
    "PersistentVolumeClaimVolumeSource": {1: ("claimName", "string"), 2: ("readOnly", "bool")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule"),
        3: ("aggregationRule", "AggregationRule")},
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
        4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[]LabelSelector")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"),
        4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
}

# The kinds whose protobuf this server reads (message name = kind).
DECODABLE_KINDS = frozenset({
    "Secret", "ConfigMap", "Namespace", "ServiceAccount", "Service", "Job", "CronJob", "Deployment",
    "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
})

# Pointer fields in Go: present on the wire only when set, so a zero there is the client's value.
_ZERO_IS_A_VALUE = frozenset({
    ("Secret", "immutable"), ("ConfigMap", "immutable"),
    ("DeploymentSpec", "replicas"), ("DeploymentSpec", "revisionHistoryLimit"),
    ("DeploymentSpec", "progressDeadlineSeconds"),
    ("JobSpec", "parallelism"), ("JobSpec", "completions"), ("JobSpec", "backoffLimit"),
    ("JobSpec", "activeDeadlineSeconds"), ("JobSpec", "ttlSecondsAfterFinished"), ("JobSpec", "suspend"),
    ("JobSpec", "manualSelector"), ("CronJobSpec", "suspend"), ("CronJobSpec", "startingDeadlineSeconds"),
    ("CronJobSpec", "successfulJobsHistoryLimit"), ("CronJobSpec", "failedJobsHistoryLimit"),
    ("PodSpec", "terminationGracePeriodSeconds"), ("PodSpec", "activeDeadlineSeconds"),
    ("PodSpec", "automountServiceAccountToken"), ("ServiceAccount", "automountServiceAccountToken"),
    ("OwnerReference", "controller"), ("OwnerReference", "blockOwnerDeletion"),
    ("SecretVolumeSource", "defaultMode"), ("ConfigMapVolumeSource", "defaultMode"),
    ("SecretKeySelector", "optional"), ("ConfigMapKeySelector", "optional"),
})

_VARINT_SCALARS = frozenset({"int32", "int64", "bool"})


class ProtobufError(ValueError):
    """A protobuf body this server cannot read (answered with 400 and a way around it)."""


def is_protobuf(content_type: str) -> bool:
    return content_type == MEDIA_TYPE


def _timestamp(message: Mapping[str, Any]) -> str | None:
    seconds = int(message.get("seconds") or 0)
    if not seconds and not message.get("nanos"):
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(message: Mapping[str, Any]) -> int | str:
    return str(message.get("strVal", "")) if message.get("type") == 1 else int(message.get("intVal", 0))


# Messages whose JSON form is not an object.
_SPECIAL: dict[str, Any] = {
    "Time": _timestamp,
    "Quantity": lambda message: message.get("string", ""),
    "IntOrString": _int_or_string,
    "FieldsV1": lambda message: json.loads(base64.b64decode(message.get("Raw", "")) or b"{}"),
}


def _scalar(kind: str, wire_type: int, value: int | bytes, where: str) -> Any:
    if kind in _VARINT_SCALARS:
        if not isinstance(value, int):
            raise ProtobufError(f"{where}: expected a varint")
        if kind == "bool":
            return bool(value)
        return protowire.signed(value, 32 if kind == "int32" else 64)
    if kind == "double":
        if not isinstance(value, int) or wire_type != protowire.FIXED64:
            raise ProtobufError(f"{where}: expected a double")
        return protowire.fixed64_to_double(value)
    if not isinstance(value, bytes):
        raise ProtobufError(f"{where}: expected length-delimited bytes")
    if kind == "string":
        return value.decode("utf-8")
    return base64.b64encode(value).decode("ascii")  # bytes: JSON carries them in base64


def _value(kind: str, wire_type: int, value: int | bytes, where: str) -> Any:
    if kind in MESSAGES:
        if not isinstance(value, bytes):
            raise ProtobufError(f"{where}: expected an embedded {kind} message")
        return decode_message(kind, value)
    return _scalar(kind, wire_type, value, where)


def _map_entry(key_kind: str, value_kind: str, entry: bytes, where: str) -> tuple[Any, Any]:
    key: Any = ""
    value: Any = _empty(value_kind)
    for number, wire_type, raw in protowire.fields(entry):
        if number == 1:
            key = _scalar(key_kind, wire_type, raw, where)
        elif number == 2:
            value = _value(value_kind, wire_type, raw, where)
    return key, value


def _empty(kind: str) -> Any:
    return {"string": "", "bytes": "", "bool": False, "int32": 0, "int64": 0, "double": 0.0}.get(kind, {})


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == 0 or value == {} or value == []


def decode_message(message: str, data: bytes) -> Any:
    """One message as JSON data (special types such as Time become their JSON form)."""
    table = MESSAGES[message]
    result: dict[str, Any] = {}
    for number, wire_type, raw in protowire.fields(data):
        if number not in table:
            raise ProtobufError(f"{message} field {number} is not known to the emulator's protobuf tables")
        name, kind = table[number]
        where = f"{message}.{name}"
        if kind.startswith("map<"):
            key_kind, value_kind = kind[4:-1].split(",")
            if not isinstance(raw, bytes):
                raise ProtobufError(f"{where}: expected a map entry")
            key, value = _map_entry(key_kind, value_kind, raw, where)
            result.setdefault(name, {})[key] = value
        elif kind.startswith("[]"):
            item_kind = kind[2:]
            items = result.setdefault(name, [])
            if item_kind in _VARINT_SCALARS and wire_type == protowire.LENGTH_DELIMITED and isinstance(raw, bytes):
                items.extend(_scalar(item_kind, protowire.VARINT, value, where) for _, _, value in
                             protowire.fields(_packed_as_fields(raw)))
            else:
                items.append(_value(item_kind, wire_type, raw, where))
        else:
            result[name] = _value(kind, wire_type, raw, where)
    if message in _SPECIAL:
        return _SPECIAL[message](result)
    return {
        name: value for name, value in result.items()
        if not _is_empty(value) or (message, name) in _ZERO_IS_A_VALUE
    }


def _packed_as_fields(packed: bytes) -> bytes:
    """Re-key a packed repeated varint so the field reader can walk it (field 1, wire type 0)."""
    out = bytearray()
    position = 0
    while position < len(packed):
        start = position
        while packed[position] & 0x80:
            position += 1
        position += 1
        out += b"\x08" + packed[start:position]
    return bytes(out)


def decode_object(body: bytes) -> dict[str, Any]:
    """A whole request body (magic + runtime.Unknown) as the object's JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    try:
        envelope = decode_message("Unknown", body[len(MAGIC) :])
        type_meta = envelope.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        if kind not in DECODABLE_KINDS:
            raise ProtobufError(f"the emulator cannot read {kind or 'this kind'} in protobuf")
        if envelope.get("contentEncoding"):
            raise ProtobufError(f"content encoding {envelope['contentEncoding']!r} is not supported")
        raw = base64.b64decode(envelope.get("raw", ""))
        obj = decode_message(kind, raw)
    except protowire.WireError as error:
        raise ProtobufError(f"malformed protobuf: {error}") from None
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
