"""OpenAPI v3 (structural schema) validation of custom resources, with the real error wording.

Messages follow the API server (kube-openapi): ``spec.x in body should match '^[a-z]+$'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from devops_operator.sandbox.apiserver.errors import FIELD_TYPE_INVALID, FieldError
from devops_operator.sandbox.apiserver.metadata import parse_timestamp
from devops_operator.sandbox.apiserver.patching import json_equal
from devops_operator.sandbox.apiserver.schema import PRESERVE_UNKNOWN, Schema, child_path

INT_OR_STRING = "x-kubernetes-int-or-string"


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int():
            return "integer"
        case float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case _:
            return "object"


def _has_type(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _check_type(value: Any, schema: Schema, path: str) -> FieldError | None:
    if schema.get(INT_OR_STRING):
        if _json_type(value) in ("integer", "string"):
            return None
        expected = "integer,string"
    else:
        expected = schema.get("type", "")
        if not expected or _has_type(value, expected):
            return None
    actual = _json_type(value)
    return FieldError.type_invalid(path, actual, f'{path} in body must be of type {expected}: "{actual}"')


def _check_string(value: str, schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        errors.append(FieldError.invalid(path, value, f"{path} in body should match '{pattern}'"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        detail = f"{path} in body should be at least {schema['minLength']} chars long"
        errors.append(FieldError.invalid(path, value, detail))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        detail = f"{path} in body should be at most {schema['maxLength']} chars long"
        errors.append(FieldError.invalid(path, value, detail))
    if schema.get("format") == "date-time" and parse_timestamp(value) is None:
        errors.append(FieldError.invalid(path, value, f'{path} in body must be of type date-time: "{value}"'))
    return errors


def _lower_bound_error(value: float, schema: Schema, path: str) -> str | None:
    minimum = schema.get("minimum")
    exclusive = schema.get("exclusiveMinimum")
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):  # JSON-schema style
        minimum, exclusive = exclusive, True
    if minimum is None:
        return None
    if exclusive and value <= minimum:
        return f"{path} in body should be greater than {minimum}"
    if not exclusive and value < minimum:
        return f"{path} in body should be greater than or equal to {minimum}"
    return None


def _upper_bound_error(value: float, schema: Schema, path: str) -> str | None:
    maximum = schema.get("maximum")
    exclusive = schema.get("exclusiveMaximum")
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):  # JSON-schema style
        maximum, exclusive = exclusive, True
    if maximum is None:
        return None
    if exclusive and value >= maximum:
        return f"{path} in body should be less than {maximum}"
    if not exclusive and value > maximum:
        return f"{path} in body should be less than or equal to {maximum}"
    return None


def _check_number(value: float, schema: Schema, path: str) -> list[FieldError]:
    details = [_lower_bound_error(value, schema, path), _upper_bound_error(value, schema, path)]
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        details.append(f"{path} in body should be a multiple of {multiple}")
    return [FieldError.invalid(path, value, detail) for detail in details if detail]


def _check_array(value: list[Any], schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        detail = f"{path} in body should have at least {schema['minItems']} items"
        errors.append(FieldError.invalid(path, value, detail))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        detail = f"{path} in body should have at most {schema['maxItems']} items"
        errors.append(FieldError.invalid(path, value, detail))
    if schema.get("uniqueItems") and any(json_equal(a, b) for index, a in enumerate(value) for b in value[index + 1 :]):
        errors.append(FieldError.invalid(path, value, f"{path} in body shouldn't contain duplicates"))
    errors.extend(_list_type_duplicates(value, schema, path))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value):
            errors.extend(validate_value(item, items, f"{path}[{index}]"))
    return errors


def _list_type_duplicates(value: list[Any], schema: Schema, path: str) -> list[FieldError]:
    """`x-kubernetes-list-type: map` entries are unique by their keys, `set` entries by value."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])

        def identity(item: Any) -> Any:
            return tuple(item.get(key) for key in keys) if isinstance(item, Mapping) else item

        seen: set[Any] = set()
        errors = []
        for index, item in enumerate(value):
            key = identity(item)
            if key in seen:
                shown = {name: item.get(name) for name in keys} if isinstance(item, Mapping) else item
                errors.append(FieldError.duplicate(f"{path}[{index}]", shown))
            seen.add(key)
        return errors
    if list_type == "set":
        return [
            FieldError.duplicate(f"{path}[{index}]", item)
            for index, item in enumerate(value)
            if any(json_equal(item, earlier) for earlier in value[:index])
        ]
    return []


def _check_object(value: Mapping[str, Any], schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in schema.get("required") or ():
        if key not in value:
            errors.append(FieldError.required(child_path(path, key)))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        detail = f"{path} in body should have at least {schema['minProperties']} properties"
        errors.append(FieldError.invalid(path, value, detail))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        detail = f"{path} in body should have at most {schema['maxProperties']} properties"
        errors.append(FieldError.invalid(path, value, detail))
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            errors.extend(validate_value(item, properties[key], child_path(path, key)))
        elif isinstance(additional, Mapping):
            errors.extend(validate_value(item, additional, f"{path}[{key}]"))
    return errors


_KIND_CHECKS: dict[str, Callable[[Any, Schema, str], list[FieldError]]] = {
    "string": _check_string,
    "integer": _check_number,
    "number": _check_number,
    "array": _check_array,
    "object": _check_object,
}


def validate_value(value: Any, schema: Schema, path: str) -> list[FieldError]:
    """All violations of ``schema`` by ``value`` located at ``path`` (like ``spec.items[0].name``)."""
    if value is None:
        if schema.get("nullable") or (schema.get(PRESERVE_UNKNOWN) and not schema.get("type")):
            return []
        expected = schema.get("type") or "integer,string"
        return [FieldError.type_invalid(path, "null", f'{path} in body must be of type {expected}: "null"')]
    type_error = _check_type(value, schema, path)
    if type_error is not None:
        return [type_error]
    enum = schema.get("enum")
    if enum is not None and not any(json_equal(value, choice) for choice in enum):
        return [FieldError.not_supported(path, value, enum)]
    check = _KIND_CHECKS.get(_json_type(value))
    return check(value, schema, path) if check else []


def validate_object(obj: Mapping[str, Any], schema: Schema) -> list[FieldError]:
    """Validate a whole custom resource; root metadata is the server's job, not the schema's."""
    body = {key: value for key, value in obj.items() if key not in ("metadata", "apiVersion", "kind")}
    properties = {key: value for key, value in (schema.get("properties") or {}).items() if key != "metadata"}
    root_schema = {
        **schema,
        "properties": properties,
        "required": [key for key in schema.get("required") or () if key not in ("metadata", "apiVersion", "kind")],
    }
    return _check_object(body, root_schema, "")


def blocks_rules(problems: list[FieldError]) -> bool:
    """Type errors stop the CEL rules from running (their ``self`` would not have the declared type)."""
    return any(problem.reason == FIELD_TYPE_INVALID for problem in problems)


RULES_NOT_CHECKED = FieldError.invalid(
    "<nil>",
    "null",
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
)
