"""A Swagger 2.0 document in protobuf (gnostic's ``openapi.v2.Document``), the only form kubectl reads.

client-go asks ``/openapi/v2`` for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
and unmarshals nothing else. Field numbers are those of gnostic's OpenAPIv2.proto; values that are
free-form JSON (defaults, enums, vendor extensions) travel as YAML text in ``Any.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from devops_operator.sandbox.apiserver.protowire import bytes_field, double_field, string_field, varint_field

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what clients ask for
# What the answer is labelled: "@" is not valid in a media type, and Go's mime parser refuses it.
RESPONSE_MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# Schema: JSON-schema keyword -> (field number, how it is written)
_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_SCHEMA_INTEGERS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15,
                    "maxProperties": 17, "minProperties": 18}


def _any(value: Any) -> bytes:
    return string_field(2, yaml.safe_dump(value, default_flow_style=False))


def _named(number: int, name: str, value: bytes) -> bytes:
    return bytes_field(number, string_field(1, name) + bytes_field(2, value))


def _vendor_extensions(number: int, source: Mapping[str, Any]) -> bytes:
    return b"".join(_named(number, key, _any(value)) for key, value in source.items() if key.startswith("x-"))


def schema(source: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for key, value in source.items():
        if key in _SCHEMA_STRINGS:
            out += string_field(_SCHEMA_STRINGS[key], str(value))
        elif key in _SCHEMA_DOUBLES and not isinstance(value, bool):
            out += double_field(_SCHEMA_DOUBLES[key], value)
        elif key in _SCHEMA_BOOLS and isinstance(value, bool):
            out += varint_field(_SCHEMA_BOOLS[key], value)
        elif key in _SCHEMA_INTEGERS:
            out += varint_field(_SCHEMA_INTEGERS[key], int(value))
        elif key == "default":
            out += bytes_field(5, _any(value))
        elif key == "example":
            out += bytes_field(30, _any(value))
        elif key == "required":
            out += b"".join(string_field(19, name) for name in value)
        elif key == "enum":
            out += b"".join(bytes_field(20, _any(choice)) for choice in value)
        elif key == "additionalProperties":
            item = varint_field(2, value) if isinstance(value, bool) else bytes_field(1, schema(value))
            out += bytes_field(21, item)
        elif key == "type":
            out += bytes_field(22, b"".join(string_field(1, name) for name in ([value] if isinstance(value, str)
                                                                                  else value)))
        elif key == "items":
            out += bytes_field(23, b"".join(bytes_field(1, schema(item)) for item in
                                            (value if isinstance(value, list) else [value])))
        elif key == "allOf":
            out += b"".join(bytes_field(24, schema(item)) for item in value)
        elif key == "properties":
            out += bytes_field(25, b"".join(_named(1, name, schema(item)) for name, item in value.items()))
    out += _vendor_extensions(31, source)
    return bytes(out)


def _parameter(source: Mapping[str, Any]) -> bytes:
    if source["in"] == "body":
        body = (string_field(2, source["name"]) + string_field(3, "body") + varint_field(4, True)
                + bytes_field(5, schema(source["schema"])))
        return bytes_field(1, bytes_field(1, body))
    query = (string_field(2, source["in"]) + string_field(3, source.get("description", ""))
             + string_field(4, source["name"]) + string_field(6, source.get("type", "string"))
             + varint_field(20, bool(source.get("uniqueItems"))))
    return bytes_field(1, bytes_field(2, bytes_field(3, query)))


def _responses(source: Mapping[str, Any]) -> bytes:
    entries = b""
    for code, response in source.items():
        body = string_field(1, response.get("description", ""))
        if "schema" in response:
            body += bytes_field(2, bytes_field(1, schema(response["schema"])))
        entries += _named(1, code, bytes_field(1, body))
    return entries


def _operation(source: Mapping[str, Any]) -> bytes:
    out = string_field(3, source.get("description", "")) + string_field(5, source.get("operationId", ""))
    out += b"".join(string_field(6, media) for media in source.get("produces") or ())
    out += b"".join(string_field(7, media) for media in source.get("consumes") or ())
    out += b"".join(bytes_field(8, _parameter(parameter)) for parameter in source.get("parameters") or ())
    out += bytes_field(9, _responses(source.get("responses") or {}))
    out += b"".join(string_field(10, scheme) for scheme in source.get("schemes") or ())
    return out + _vendor_extensions(13, source)


_PATH_ITEM_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(source: Mapping[str, Any]) -> bytes:
    return b"".join(bytes_field(_PATH_ITEM_METHODS[method], _operation(operation))
                    for method, operation in source.items() if method in _PATH_ITEM_METHODS)


def encode_document(document: Mapping[str, Any]) -> bytes:
    """The whole Swagger document as gnostic's protobuf ``Document``."""
    info = document.get("info") or {}
    out = string_field(1, document.get("swagger", "2.0"))
    out += bytes_field(2, string_field(1, info.get("title", "")) + string_field(2, info.get("version", "")))
    paths = b"".join(_named(2, path, _path_item(item)) for path, item in (document.get("paths") or {}).items())
    out += bytes_field(8, paths)
    definitions = b"".join(_named(1, name, schema(item)) for name, item in (document.get("definitions") or {}).items())
    out += bytes_field(9, definitions)
    return out
