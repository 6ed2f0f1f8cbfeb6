"""Structural-schema shaping of custom resources: pruning unknown fields and applying defaults.

Order as in the real API server: prune unknown fields (and nulls of non-nullable fields), then
apply defaults, then validate (see ``validation.py``). ``apiVersion``, ``kind`` and ``metadata``
at the root are never pruned by the schema: ObjectMeta is handled by the server itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

ROOT_FIELDS_KEPT = ("apiVersion", "kind", "metadata")
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
EMBEDDED_RESOURCE = "x-kubernetes-embedded-resource"


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _property_schema(schema: Schema, key: str) -> tuple[Schema | None, bool]:
    """The schema of ``key`` inside an object, and whether the key is known at all."""
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key], True
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        return additional, True
    keeps_unknown = bool(schema.get(PRESERVE_UNKNOWN)) or additional is True
    keeps_unknown = keeps_unknown or (bool(schema.get(EMBEDDED_RESOURCE)) and key in ROOT_FIELDS_KEPT)
    return None, keeps_unknown


def _prune_object(value: Mapping[str, Any], schema: Schema, path: str, unknown: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        subschema, known = _property_schema(schema, key)
        if not known:
            unknown.append(child_path(path, key))
            continue
        if subschema is None:  # preserved as is
            result[key] = item
        elif item is None and not subschema.get("nullable"):
            continue  # nulls of non-nullable fields are dropped (then defaulted)
        else:
            result[key] = _prune(item, subschema, child_path(path, key), unknown)
    return result


def _prune(value: Any, schema: Schema, path: str, unknown: list[str]) -> Any:
    if isinstance(value, Mapping) and (schema.get("type") == "object" or "properties" in schema):
        return _prune_object(value, schema, path, unknown)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [_prune(item, items, f"{path}[{index}]", unknown) for index, item in enumerate(value)]
    return value


def prune(obj: Mapping[str, Any], schema: Schema) -> tuple[dict[str, Any], list[str]]:
    """Drop fields the schema does not declare; returns the pruned copy and the dropped field paths."""
    unknown: list[str] = []
    body = {key: value for key, value in obj.items() if key not in ROOT_FIELDS_KEPT}
    pruned = _prune_object(body, schema, "", unknown)
    kept = {key: obj[key] for key in ROOT_FIELDS_KEPT if key in obj}
    return {**kept, **pruned}, unknown


def _default_object(value: dict[str, Any], schema: Schema) -> dict[str, Any]:
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    for key, subschema in properties.items():
        if key not in value and "default" in subschema:
            value[key] = copy.deepcopy(subschema["default"])
        if key in value:
            value[key] = _apply_defaults(value[key], subschema)
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        for key in value:
            if key not in properties:
                value[key] = _apply_defaults(value[key], additional)
    return value


def _apply_defaults(value: Any, schema: Schema) -> Any:
    if isinstance(value, dict):
        return _default_object(value, schema)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [_apply_defaults(item, items) for item in value]
    return value


def apply_defaults(obj: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Fill absent fields that declare a ``default``, recursively, on a deep copy."""
    result = copy.deepcopy(dict(obj))
    properties = {key: value for key, value in (schema.get("properties") or {}).items() if key != "metadata"}
    return _default_object(result, {**schema, "properties": properties})
