"""Kubernetes API errors, rendered as ``v1 Status`` bodies exactly as a real API server words them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import aiohttp.web

# The reasons of field-level causes (k8s.io/apimachinery/pkg/util/validation/field).
FIELD_REQUIRED = "FieldValueRequired"
FIELD_INVALID = "FieldValueInvalid"
FIELD_NOT_SUPPORTED = "FieldValueNotSupported"
FIELD_TYPE_INVALID = "FieldValueTypeInvalid"
FIELD_FORBIDDEN = "FieldValueForbidden"
FIELD_DUPLICATE = "FieldValueDuplicate"
FIELD_TOO_LONG = "FieldValueTooLong"


def render_value(value: Any) -> str:
    """Render a value the way field errors quote it: strings quoted, numbers bare, others as JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One invalid field; ``message`` is the body without the field path, as in Status causes."""

    reason: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def as_cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        message = f"Required value: {detail}" if detail else "Required value"
        return cls(FIELD_REQUIRED, field, message)

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls(FIELD_INVALID, field, f"Invalid value: {render_value(value)}: {detail}")

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls(FIELD_DUPLICATE, field, f"Duplicate value: {render_value(value)}")

    @classmethod
    def type_invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls(FIELD_TYPE_INVALID, field, f"Invalid value: {render_value(value)}: {detail}")

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: Sequence[Any]) -> FieldError:
        choices = ", ".join(render_value(choice) for choice in supported)
        return cls(
            FIELD_NOT_SUPPORTED,
            field,
            f"Unsupported value: {render_value(value)}: supported values: {choices}",
        )

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls(FIELD_FORBIDDEN, field, f"Forbidden: {detail}")

    @classmethod
    def too_long(cls, field: str, limit: int) -> FieldError:
        # field.TooLong omits the value; kube-apiserver 1.32+ words the limit like this.
        return cls(FIELD_TOO_LONG, field, f"Too long: may not be more than {limit} bytes")


def qualified_resource(group: str, plural: str) -> str:
    """``configmaps`` for the core group, ``plural.group`` otherwise (GroupResource.String())."""
    return f"{plural}.{group}" if group else plural


def qualified_kind(group: str, kind: str) -> str:
    """``ConfigMap`` for the core group, ``Kind.group`` otherwise (GroupKind.String())."""
    return f"{kind}.{group}" if group else kind


class ApiError(Exception):
    """An API-level failure: becomes an HTTP response with a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def as_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del status["reason"]  # StatusReasonUnknown is omitted, as Go's omitempty does
        if self.details is not None:
            status["details"] = self.details
        return status

    def as_response(self) -> aiohttp.web.Response:
        return aiohttp.web.json_response(self.as_status(), status=self.code)


def _object_details(group: str, plural: str, name: str) -> dict[str, Any]:
    return {"name": name, "group": group, "kind": plural}


def not_found(group: str, plural: str, name: str) -> ApiError:
    message = f'{qualified_resource(group, plural)} "{name}" not found'
    return ApiError(404, "NotFound", message, _object_details(group, plural, name))


def resource_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(group: str, plural: str, name: str) -> ApiError:
    message = f'{qualified_resource(group, plural)} "{name}" already exists'
    return ApiError(409, "AlreadyExists", message, _object_details(group, plural, name))


def conflict(group: str, plural: str, name: str, detail: str | None = None) -> ApiError:
    detail = detail or ("the object has been modified; please apply your changes to the latest version and try again")
    message = f'Operation cannot be fulfilled on {qualified_resource(group, plural)} "{name}": {detail}'
    return ApiError(409, "Conflict", message, _object_details(group, plural, name))


def invalid(group: str, kind: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    # errors.ToAggregate() prints one error bare and several as a bracketed list.
    texts = [str(error) for error in errors]
    summary = texts[0] if len(texts) == 1 else f"[{', '.join(texts)}]"
    message = f'{qualified_kind(group, kind)} "{name}" is invalid: {summary}'
    details = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [error.as_cause() for error in errors],
    }
    return ApiError(422, "Invalid", message, details)


def unprocessable(message: str) -> ApiError:
    """A request that decoded fine but cannot be applied, e.g. a failed JSON-patch ``test``."""
    return ApiError(422, "Invalid", message, {"causes": [{"reason": "FieldValueInvalid", "message": message}]})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    message = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
    return ApiError(415, "UnsupportedMediaType", message, {"causes": [{"message": content_type}]})


def request_entity_too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}", {})


def storage_too_large() -> ApiError:
    """etcd refuses an oversized write; kube-apiserver passes its error on as a bare 500."""
    return ApiError(500, "", "etcdserver: request is too large")


def strict_decoding(kind: str, version: str, problems: Sequence[str]) -> ApiError:
    """fieldValidation=Strict refusing unknown or duplicate fields (400, as kube-apiserver words it)."""
    message = f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
    return ApiError(400, "BadRequest", message + ", ".join(problems))


def expired(requested: int, oldest: int) -> ApiError:
    message = f"too old resource version: {requested} ({oldest})"
    return ApiError(410, "Expired", message)
