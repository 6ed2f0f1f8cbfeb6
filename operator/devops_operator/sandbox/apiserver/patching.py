"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (as merge), JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class PatchError(ValueError):
    """A malformed patch document; the API server answers 400 BadRequest."""


class PatchConflict(ValueError):
    """A well-formed JSON patch that does not apply (failed ``test``, missing path); answered 422."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Maps merge like a merge patch and lists are replaced; ``$``-directives are dropped."""
    return merge_patch(target, _without_directives(patch))


def _without_directives(patch: Any) -> Any:
    if isinstance(patch, Mapping):
        return {key: _without_directives(value) for key, value in patch.items() if not key.startswith("$")}
    return patch


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1`` (unlike Python's ``==``)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return (type(left) is type(right) and left == right) or (_both_numbers(left, right) and left == right)


def _both_numbers(left: Any, right: Any) -> bool:
    return isinstance(left, int | float) and isinstance(right, int | float)


def _parse_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {pointer!r}")
    if pointer == "":
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _array_index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchConflict(f"invalid array index: {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise PatchConflict(f"array index out of bounds: {index}")
    return index


def _resolve_parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(node, token, for_insert=False)]
        else:
            raise PatchConflict(f"path does not exist: /{'/'.join(tokens)}")
    return node


def _get(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        return document
    parent = _resolve_parent(document, tokens)
    token = tokens[-1]
    if isinstance(parent, dict) and token in parent:
        return parent[token]
    if isinstance(parent, list):
        return parent[_array_index(parent, token, for_insert=False)]
    raise PatchConflict(f"path does not exist: /{'/'.join(tokens)}")


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve_parent(document, tokens)
    token = tokens[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(parent, token, for_insert=True), value)
    else:
        raise PatchConflict(f"cannot add to a scalar at /{'/'.join(tokens)}")
    return document


def _remove(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchConflict("cannot remove the whole document")
    parent = _resolve_parent(document, tokens)
    token = tokens[-1]
    if isinstance(parent, dict) and token in parent:
        del parent[token]
    elif isinstance(parent, list):
        del parent[_array_index(parent, token, for_insert=False)]
    else:
        raise PatchConflict(f"path does not exist: /{'/'.join(tokens)}")
    return document


def _apply_operation(document: Any, operation: Any) -> Any:
    if not isinstance(operation, Mapping) or "op" not in operation or "path" not in operation:
        raise PatchError(f"a JSON patch operation needs 'op' and 'path': {operation!r}")
    op = operation["op"]
    tokens = _parse_pointer(operation["path"])
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"the {op!r} operation needs a 'value': {operation!r}")
    match op:
        case "add":
            return _add(document, tokens, copy.deepcopy(operation["value"]))
        case "remove":
            return _remove(document, tokens)
        case "replace":
            _get(document, tokens)  # must exist
            return (
                _add(_remove(document, tokens), tokens, copy.deepcopy(operation["value"]))
                if tokens
                else (copy.deepcopy(operation["value"]))
            )
        case "move" | "copy":
            source = _parse_pointer(operation.get("from"))
            if op == "move" and tokens[: len(source)] == source and tokens != source:
                raise PatchConflict("cannot move a value into one of its own children")
            value = copy.deepcopy(_get(document, source))
            if op == "move":
                document = _remove(document, source)
            return _add(document, tokens, value)
        case "test":
            if not json_equal(_get(document, tokens), operation["value"]):
                raise PatchConflict(f"testing value {operation['path']} failed: test failed")
            return document
        case _:
            raise PatchError(f"unexpected kind of JSON patch operation: {op!r}")


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 on a copy of the document; the original is left intact."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    result = copy.deepcopy(document)
    for operation in operations:
        result = _apply_operation(result, operation)
    return result
