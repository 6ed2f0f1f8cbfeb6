"""Server-managed object metadata: identity, timestamps, generation, and name validation."""

from __future__ import annotations

import datetime
import random
import re
import uuid
from collections.abc import Mapping
from typing import Any

from devops_operator.sandbox.apiserver.builtin_schemas import OBJECT_META_FIELDS
from devops_operator.sandbox.apiserver.errors import FieldError

# Fields a client can never set: the server owns them (resourceVersion is only a precondition).
SERVER_OWNED_FIELDS = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)

# Fields an update cannot change; they are carried over from the stored object.
IMMUTABLE_FIELDS = ("name", "namespace", *SERVER_OWNED_FIELDS)

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_LABEL_ONLY = re.compile(rf"^{_DNS1123_LABEL}$")
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)

# The alphabet and length of the random suffix of generateName (no vowels: no accidental words).
_GENERATED_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATED_LENGTH = 5
_MAX_GENERATE_PREFIX = 58


def now_timestamp() -> str:
    """RFC 3339 in UTC with second precision and a ``Z``, as metav1.Time serialises."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_in(seconds: int) -> str:
    """now_timestamp() `seconds` from now (a graceful deletion's deletionTimestamp)."""
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return later.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def generate_name(prefix: str) -> str:
    suffix = "".join(random.choices(_GENERATED_ALPHABET, k=_GENERATED_LENGTH))
    return f"{prefix[:_MAX_GENERATE_PREFIX]}{suffix}"


def new_uid() -> str:
    return str(uuid.uuid4())


def validate_name(metadata: Mapping[str, Any], *, label_only: bool) -> list[FieldError]:
    """Name presence and DNS-1123 shape (a label for namespaces, a subdomain for everything else)."""
    name = metadata.get("name")
    if not name:
        return [FieldError.required("metadata.name", "name or generateName is required")]
    if not isinstance(name, str):
        return [FieldError.type_invalid("metadata.name", name, "must be a string")]
    pattern, limit, message = (
        (_DNS1123_LABEL_ONLY, 63, _LABEL_MESSAGE) if label_only else (_DNS1123_SUBDOMAIN, 253, _SUBDOMAIN_MESSAGE)
    )
    errors: list[FieldError] = []
    if len(name) > limit:
        errors.append(FieldError.invalid("metadata.name", name, f"must be no more than {limit} characters"))
    if not pattern.match(name):
        errors.append(FieldError.invalid("metadata.name", name, message))
    return errors


def validate_metadata_types(metadata: Mapping[str, Any]) -> list[FieldError]:
    """Labels and annotations must be string maps; finalizers a list of strings."""
    errors: list[FieldError] = []
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is not None and not (
            isinstance(value, Mapping) and all(isinstance(item, str) for item in value.values())
        ):
            errors.append(FieldError.type_invalid(f"metadata.{field}", value, "must be a map of strings"))
    finalizers = metadata.get("finalizers")
    if finalizers is not None and not (
        isinstance(finalizers, list) and all(isinstance(item, str) for item in finalizers)
    ):
        errors.append(FieldError.type_invalid("metadata.finalizers", finalizers, "must be a list of strings"))
    return errors


def content_changed(old: Mapping[str, Any], new: Mapping[str, Any], *, status_is_separate: bool) -> bool:
    """Whether a write changes the object's desired state, i.e. whether ``generation`` increments.

    Metadata never counts; ``status`` does not count when the status subresource owns it.
    """
    ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if status_is_separate else set())
    old_content = {key: value for key, value in old.items() if key not in ignored}
    new_content = {key: value for key, value in new.items() if key not in ignored}
    return old_content != new_content


def prune_unknown_fields(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Drop ObjectMeta fields that do not exist (``metadata.fields``); returns them as unknown field paths."""
    meta = obj.get("metadata")
    result = dict(obj)
    if not isinstance(meta, Mapping):
        return result, []
    unknown = sorted(f"metadata.{key}" for key in meta if key not in OBJECT_META_FIELDS)
    result["metadata"] = {key: value for key, value in meta.items() if key in OBJECT_META_FIELDS}
    return result, unknown
