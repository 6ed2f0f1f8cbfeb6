"""Request bodies as the API server decodes them: JSON, YAML or protobuf, noting duplicate fields.

``fieldValidation`` (Ignore, Warn, Strict; Warn when absent) decides what unknown and duplicate
fields do: nothing, a ``Warning: 299 - "..."`` response header each, or a 400 strict decoding error.
The wording follows kube-apiserver: ``duplicate field "x"`` for JSON, ``line 10: key "x" already set
in map`` for YAML, ``unknown field "spec.x"`` for fields the schema does not declare.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import yaml

from devops_operator.sandbox.apiserver import errors, protobuf_objects

IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"
FIELD_VALIDATION_DIRECTIVES = (IGNORE, WARN, STRICT)
JSON_TYPES = ("", "application/json")
YAML_TYPES = ("application/yaml", "application/x-yaml", "application/apply-patch+yaml")
ACCEPTED_MEDIA_TYPES = ("application/json", "application/yaml", protobuf_objects.MEDIA_TYPE)


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded body and the duplicate fields found on the way (in kube-apiserver's words)."""

    data: Any
    duplicates: tuple[str, ...] = ()


def field_validation(params: Mapping[str, str]) -> str:
    value = params.get("fieldValidation") or WARN
    if value not in FIELD_VALIDATION_DIRECTIVES:
        raise errors.bad_request(
            f'fieldValidation: Invalid value: "{value}": must be one of {", ".join(FIELD_VALIDATION_DIRECTIVES)}'
        )
    return value


def _decode_json(body: bytes) -> Decoded:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                duplicates.append(f'duplicate field "{key}"')
            result[key] = value
        return result

    try:
        data = json.loads(body, object_pairs_hook=pairs) if body else None
    except ValueError as error:
        raise errors.bad_request(f"error decoding JSON: {error}") from None
    return Decoded(data, tuple(duplicates))


class _DuplicateNotingLoader(yaml.SafeLoader):
    """PyYAML keeps the last of duplicate keys silently; note each one with its line, as Go's yaml does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                self.duplicates.append(f'line {key_node.start_mark.line + 1}: key "{key}" already set in map')
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DuplicateNotingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _DuplicateNotingLoader.construct_mapping
)


def _decode_yaml(text: str) -> Decoded:
    loader = _DuplicateNotingLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as error:
        raise errors.bad_request(f"error decoding YAML: {error}") from None
    finally:
        loader.dispose()
    return Decoded(data, tuple(loader.duplicates))


def decode_body(content_type: str, body: bytes) -> Decoded:
    """An object body in any encoding kube-apiserver accepts for it; anything else is 415."""
    if content_type in JSON_TYPES:
        return _decode_json(body)
    if content_type in YAML_TYPES:
        return _decode_yaml(body.decode("utf-8", errors="replace"))
    if protobuf_objects.is_protobuf(content_type):
        try:
            return Decoded(protobuf_objects.decode_object(body))
        except protobuf_objects.ProtobufError as error:
            raise errors.bad_request(
                f"{error}; send it as JSON or YAML instead (kubectl create ... --dry-run=client -o yaml "
                "| kubectl create -f -)"
            ) from None
    raise errors.unsupported_media_type(content_type, ACCEPTED_MEDIA_TYPES)


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 warn-code 299 with the text quoted, comma-separated as client-go parses them."""
    return ", ".join("299 - " + json.dumps(text, ensure_ascii=False) for text in warnings)
