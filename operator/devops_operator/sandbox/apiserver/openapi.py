"""The OpenAPI documents kubectl reads: ``/openapi/v3`` (root and per group-version) and ``/openapi/v2``.

kubectl decides from them whether the server validates fields itself (a PATCH operation of the
kind that takes a ``fieldValidation`` query parameter: then it sends ``fieldValidation=Strict``
and skips its own checks), finds the schema ``kubectl explain`` prints (the component carrying
the kind's ``x-kubernetes-group-version-kind``), and computes strategic merge patches of built-ins.

Schemas come from the installed CRDs (published as kube-apiserver publishes them: reversed-group
names, ``metadata`` referring to ObjectMeta) and from :mod:`builtin_schemas`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from devops_operator.sandbox.apiserver import builtin_schemas
from devops_operator.sandbox.apiserver.builtin_schemas import LIST_META, OBJECT_META, PATCH, Schema, ref
from devops_operator.sandbox.apiserver.catalog import ServedResource

GVK_EXTENSION = "x-kubernetes-group-version-kind"
ACTION_EXTENSION = "x-kubernetes-action"
COMPONENTS_PREFIX = "#/components/schemas/"
V3_PREFIX = "/openapi/v3/"
_BUILTIN_GROUP_PACKAGES = {"apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"}
_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def gv_path(group: str, version: str) -> str:
    """``api/v1`` or ``apis/{group}/{version}``, the keys of the v3 root document."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def definition_name(served: ServedResource, suffix: str = "") -> str:
    """The component name kube-apiserver gives a kind: reversed group for CRDs, the Go package for built-ins."""
    kind = served.kind + suffix
    version = served.resource.version or ""
    if served.custom is not None:
        return ".".join([*reversed(served.group.split(".")), version, kind])
    if served.group in _BUILTIN_GROUP_PACKAGES:
        return f"{_BUILTIN_GROUP_PACKAGES[served.group]}.{version}.{kind}"
    package = served.group.split(".")[0] if served.group else "core"
    return f"io.k8s.api.{package}.{version}.{kind}"


def _gvk(served: ServedResource) -> list[dict[str, str]]:
    return [{"group": served.group, "kind": served.kind, "version": served.resource.version or ""}]


def kind_schema(served: ServedResource) -> Schema:
    """The schema published for a kind, tagged with its group-version-kind."""
    if served.schema is not None:
        schema = copy.deepcopy(dict(served.schema))
        properties = dict(schema.get("properties") or {})
        properties["apiVersion"] = properties.get("apiVersion") or builtin_schemas.string("The schema version.")
        properties["kind"] = properties.get("kind") or builtin_schemas.string("The REST resource, in CamelCase.")
        properties["metadata"] = ref(OBJECT_META, "Standard object's metadata.")
        schema["properties"] = properties
    else:
        key = (served.group, served.resource.version or "", served.kind)
        schema = copy.deepcopy(builtin_schemas.SCHEMAS.get(key) or builtin_schemas.generic_schema(served.kind))
    schema[GVK_EXTENSION] = _gvk(served)
    return schema


def _list_schema(served: ServedResource) -> Schema:
    schema = builtin_schemas.obj(
        f"A list of {served.kind} objects.",
        {
            "apiVersion": builtin_schemas.string("The schema version."),
            "kind": builtin_schemas.string("The REST resource, in CamelCase."),
            "metadata": ref(LIST_META, "Standard list metadata."),
            "items": builtin_schemas.array({"$ref": COMPONENTS_PREFIX + definition_name(served)}, "The objects."),
        },
        ("items",),
    )
    schema[GVK_EXTENSION] = [{**_gvk(served)[0], "kind": served.list_kind}]
    return schema


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": True}}


_WRITE_PARAMETERS = [
    _query("dryRun", "When present, the write is checked but not persisted (All)."),
    _query("fieldManager", "Name of the actor making the change."),
    _query(
        "fieldValidation",
        "What to do with unknown or duplicate fields: Ignore, Warn (default) or Strict (refuse them).",
    ),
]
_READ_LIST_PARAMETERS = [
    _query("labelSelector", "Only objects whose labels match."),
    _query("fieldSelector", "Only objects whose fields match."),
    _query("limit", "Chunk size of the list.", "integer"),
    _query("continue", "Token of the next chunk."),
    _query("resourceVersion", "The version to read or watch from."),
    _query("timeoutSeconds", "Timeout of a list or watch call.", "integer"),
    _query("watch", "Stream changes instead of listing.", "boolean"),
]


def _body(schema_name: str, media_types: Iterable[str] = ("application/json", "application/yaml")) -> dict[str, Any]:
    schema = {"$ref": COMPONENTS_PREFIX + schema_name}
    return {"required": True, "content": {media: {"schema": schema} for media in media_types}}


def _response(schema_name: str) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": COMPONENTS_PREFIX + schema_name}}}
    return {"200": {"description": "OK", "content": content}}


def _operation(served: ServedResource, action: str, verb: str, schema_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "operationId": f"{verb}{served.kind}",
        "description": f"{verb} {served.kind}",
        "responses": _response(schema_name),
        ACTION_EXTENSION: action,
        GVK_EXTENSION: _gvk(served)[0],
        **extra,
    }


def _resource_paths(served: ServedResource) -> dict[str, Any]:
    version = served.resource.version or ""
    prefix = f"/apis/{served.group}/{version}" if served.group else f"/api/{version}"
    scope = "/namespaces/{namespace}" if served.namespaced else ""
    collection = f"{prefix}{scope}/{served.plural}"
    item = collection + "/{name}"
    kind_name, list_name = definition_name(served), definition_name(served, "List")
    patch_types = _PATCH_TYPES if served.custom is None else tuple(t for t in _PATCH_TYPES if "strategic" not in t)
    patch_parameters = [*_WRITE_PARAMETERS, _query("force", "Take over conflicting fields (apply).", "boolean")]

    def item_operations(suffix: str) -> dict[str, Any]:
        return {
            "get": _operation(served, "get", f"read{suffix}", kind_name),
            "put": _operation(served, "put", f"replace{suffix}", kind_name,
                              parameters=_WRITE_PARAMETERS, requestBody=_body(kind_name)),
            "patch": _operation(served, "patch", f"patch{suffix}", kind_name,
                                parameters=patch_parameters, requestBody=_body(PATCH, patch_types)),
        }

    paths: dict[str, Any] = {
        collection: {
            "get": _operation(served, "list", "list", list_name, parameters=_READ_LIST_PARAMETERS),
            "post": _operation(served, "post", "create", kind_name,
                               parameters=_WRITE_PARAMETERS, requestBody=_body(kind_name)),
        },
        item: {**item_operations(""), "delete": _operation(served, "delete", "delete", kind_name)},
    }
    if served.has_status_subresource:
        paths[item + "/status"] = item_operations("Status")
    return paths


def group_version_document(group: str, version: str, resources: Iterable[ServedResource]) -> dict[str, Any]:
    """One group-version's v3 document: its kinds (and lists) with paths, plus the shared metadata schemas."""
    schemas: dict[str, Schema] = copy.deepcopy(builtin_schemas.SHARED_DEFINITIONS)
    paths: dict[str, Any] = {}
    for served in sorted(resources, key=lambda served: served.plural):
        schemas[definition_name(served)] = kind_schema(served)
        schemas[definition_name(served, "List")] = _list_schema(served)
        paths.update(_resource_paths(served))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def content_hash(document: Mapping[str, Any]) -> str:
    """The ``hash`` kube-apiserver puts in a document's URL: clients cache by it."""
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()


def root_document(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is, with its content hash."""
    return {
        "paths": {
            path: {"serverRelativeURL": f"{V3_PREFIX}{path}?hash={content_hash(document)}"}
            for path, document in sorted(documents.items())
        }
    }


# --- OpenAPI v2 (Swagger 2.0) ----------------------------------------------------------------


def _v2_schema(schema: Any) -> Any:
    """v3 schema -> v2: references under #/definitions, single-ref allOf flattened, v3-only keywords dropped."""
    if isinstance(schema, list):
        return [_v2_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("nullable", "anyOf", "oneOf", "not"):
            continue
        if key == "$ref" and isinstance(value, str):
            result[key] = value.replace(COMPONENTS_PREFIX, "#/definitions/")
        elif key == "allOf" and isinstance(value, list) and len(value) == 1 and "$ref" in value[0]:
            result["$ref"] = value[0]["$ref"].replace(COMPONENTS_PREFIX, "#/definitions/")
        elif key in ("properties", "patternProperties") and isinstance(value, Mapping):
            result[key] = {name: _v2_schema(item) for name, item in value.items()}
        elif key in ("items", "additionalProperties"):
            result[key] = _v2_schema(value)
        else:
            result[key] = value
    return result


def _v2_parameter(parameter: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": parameter["name"],
        "in": parameter["in"],
        "description": parameter.get("description", ""),
        "type": parameter["schema"]["type"],
        "uniqueItems": True,
    }


def _v2_operation(operation: Mapping[str, Any]) -> dict[str, Any]:
    parameters = [_v2_parameter(parameter) for parameter in operation.get("parameters") or ()]
    body = operation.get("requestBody")
    consumes = ["application/json"]
    if body:
        content = body["content"]
        consumes = list(content)
        schema = next(iter(content.values()))["schema"]
        parameters.insert(0, {"name": "body", "in": "body", "required": True, "schema": _v2_schema(schema)})
    response_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return {
        "operationId": operation["operationId"],
        "description": operation["description"],
        "consumes": consumes,
        "produces": ["application/json", "application/yaml"],
        "schemes": ["https"],
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "schema": _v2_schema(response_schema)}},
        ACTION_EXTENSION: operation[ACTION_EXTENSION],
        GVK_EXTENSION: operation[GVK_EXTENSION],
    }


def swagger_document(documents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``/openapi/v2``: every group-version's paths and schemas in one Swagger 2.0 document."""
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for document in documents:
        for name, schema in document["components"]["schemas"].items():
            definitions[name] = _v2_schema(schema)
        for path, item in document["paths"].items():
            paths[path] = {method: _v2_operation(operation) for method, operation in item.items()}
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
    }
