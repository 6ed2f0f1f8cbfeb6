"""The size limits of a real cluster: annotations (256 KiB), request bodies (3 MiB), etcd objects (~1.5 MiB).

A test can then see an object that grows too big fail here as it would in a cluster, instead of
only in production. The etcd limit is approximated by the object's JSON size (custom resources are
stored as JSON; built-ins as the smaller protobuf, so they hit it a little earlier here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from devops_operator.sandbox.apiserver import errors
from devops_operator.sandbox.apiserver.errors import FieldError

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024  # bytes of keys plus values (apimachinery's TotalAnnotationSizeLimitB)
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's --max-request-bytes default
ETCD_MAX_REQUEST_BYTES = 1536 * 1024  # etcd's --max-request-bytes default (1.5 MiB)


def metadata_size_errors(meta: Mapping[str, Any]) -> list[FieldError]:
    annotations = meta.get("annotations")
    if not isinstance(annotations, Mapping):
        return []
    total = sum(len(str(key).encode()) + len(str(value).encode()) for key, value in annotations.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        return [FieldError.too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT)]
    return []


def check_request_size(length: int | None) -> None:
    if length is not None and length > MAX_REQUEST_BODY_BYTES:
        raise errors.request_entity_too_large(MAX_REQUEST_BODY_BYTES)


def check_storage_size(key: tuple[Any, str | None, str], obj: Mapping[str, Any]) -> None:
    """What etcd would refuse: the stored object (and its key) over its request limit."""
    resource, namespace, name = key
    storage_key = f"/registry/{resource.group or 'core'}/{resource.plural}/{namespace or ''}/{name}"
    size = len(storage_key) + len(json.dumps(obj, separators=(",", ":")).encode())
    if size > ETCD_MAX_REQUEST_BYTES:
        raise errors.storage_too_large()
