"""CRD validation rules (``x-kubernetes-validations``, CEL) evaluated as kube-apiserver does.

Each rule runs where it is declared, with ``self`` bound to the value there (only when the value is
present). Transition rules, those that read ``oldSelf``, run only on updates that have an old value
at the same place: object fields and map entries correlate by key, ``x-kubernetes-list-type: map``
items by their keys, set items by value; other list items have no old value. An unchanged value is
not re-judged by its non-transition rules (validation ratcheting, on by default since 1.30).

A failed rule is a field error in the API server's shape: ``spec.x: Invalid value: "object": msg``
(the value shown is the schema type), or ``Forbidden``/``Required``/``Duplicate`` per ``reason``.

The evaluator is cel-python with the Kubernetes string and list extensions the project's rules
use. A rule it cannot evaluate (an extension it lacks: ``quantity``, ``url``, ``ip``, optionals)
is not enforced, but never silently: it is logged once and the response carries a ``Warning``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes

from devops_operator.sandbox.apiserver.errors import FieldError
from devops_operator.sandbox.apiserver.patching import json_equal
from devops_operator.sandbox.apiserver.schema import child_path

VALIDATIONS = "x-kubernetes-validations"
_OLD_SELF = re.compile(r"\boldSelf\b")
_ROOT_PATH = "<nil>"  # how a Go field.Path prints the root (nil)

logger = logging.getLogger(__name__)
_reported: set[str] = set()


@dataclasses.dataclass
class Outcome:
    errors: list[FieldError] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


class Unevaluable(Exception):
    """A rule the Python evaluator cannot run (not a rule that failed)."""


# --- the Kubernetes CEL library extensions (strings, lists, regex) ------------------------------


def _text(value: Any) -> str:
    return str(value)


def _index_of(target: Any, item: Any, offset: Any = 0) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(_text(target).find(_text(item), int(offset)))
    values = list(target)
    return celtypes.IntType(next((index for index, value in enumerate(values) if value == item), -1))


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(_text(target).rfind(_text(item)))
    values = list(target)
    return celtypes.IntType(max((index for index, value in enumerate(values) if value == item), default=-1))


def _split(text: Any, separator: Any, limit: Any = -1) -> celtypes.ListType:
    parts = _text(text).split(_text(separator), int(limit) - 1 if int(limit) > 0 else -1)
    return celtypes.ListType([celtypes.StringType(part) for part in parts])


def _join(items: Any, separator: Any = "") -> celtypes.StringType:
    return celtypes.StringType(_text(separator).join(_text(item) for item in items))


def _replace(text: Any, old: Any, new: Any, limit: Any = -1) -> celtypes.StringType:
    return celtypes.StringType(_text(text).replace(_text(old), _text(new), int(limit)))


def _substring(text: Any, start: Any, end: Any = None) -> celtypes.StringType:
    value = _text(text)
    return celtypes.StringType(value[int(start) : len(value) if end is None else int(end)])


def _find_all(text: Any, pattern: Any, limit: Any = -1) -> celtypes.ListType:
    found = [celtypes.StringType(match.group(0)) for match in re.finditer(_text(pattern), _text(text))]
    return celtypes.ListType(found if int(limit) < 0 else found[: int(limit)])


def _find(text: Any, pattern: Any) -> celtypes.StringType:
    match = re.search(_text(pattern), _text(text))
    return celtypes.StringType(match.group(0) if match else "")


def _is_sorted(items: Any) -> celtypes.BoolType:
    values = list(items)
    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(values)))


EXTENSIONS: dict[str, Callable[..., Any]] = {
    "charAt": lambda text, index: celtypes.StringType(_text(text)[int(index) : int(index) + 1]),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda text: celtypes.StringType(_text(text).lower()),
    "upperAscii": lambda text: celtypes.StringType(_text(text).upper()),
    "trim": lambda text: celtypes.StringType(_text(text).strip()),
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "join": _join,
    "find": _find,
    "findAll": _find_all,
    "isSorted": _is_sorted,
    "sum": lambda items: sum(items, celtypes.IntType(0)),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
}

# --- compiling and running rules --------------------------------------------------------------

_environment = celpy.Environment()
_programs: dict[str, Any] = {}


def _program(expression: str) -> Any:
    if expression not in _programs:
        try:
            _programs[expression] = _environment.program(_environment.compile(expression), functions=EXTENSIONS)
        except celpy.CELParseError as error:
            _programs[expression] = Unevaluable(f"cannot parse: {str(error).splitlines()[0]}")
    program = _programs[expression]
    if isinstance(program, Unevaluable):
        raise program
    return program


def _run(expression: str, activation: dict[str, Any]) -> Any:
    try:
        return _program(expression).evaluate(activation)
    except celpy.CELEvalError as error:
        text = str(error.args[0]) if error.args else str(error)
        if text.startswith("undeclared reference to"):
            raise Unevaluable(text.split(" (in activation")[0]) from None
        raise


@dataclasses.dataclass(frozen=True)
class _Place:
    value: Any
    old: Any
    has_old: bool
    schema: Mapping[str, Any]
    path: str


def _message(rule: Mapping[str, Any], activation: dict[str, Any]) -> str:
    if rule.get("messageExpression"):
        try:
            return str(_run(str(rule["messageExpression"]), activation))
        except (Unevaluable, celpy.CELEvalError):
            pass  # as kube-apiserver: fall back to the static message
    return str(rule.get("message") or f"failed rule: {rule['rule']}")


def _field_error(rule: Mapping[str, Any], place: _Place, message: str) -> FieldError:
    path = place.path
    field_path = str(rule.get("fieldPath") or "")
    if field_path:
        path = child_path(path, field_path.lstrip(".")) if field_path.startswith(".") else path + field_path
    path = path or _ROOT_PATH
    shown = place.schema.get("type") or "object"
    match rule.get("reason"):
        case "FieldValueForbidden":
            return FieldError.forbidden(path, message)
        case "FieldValueRequired":
            return FieldError.required(path, message)
        case "FieldValueDuplicate":
            return FieldError.duplicate(path, shown)
        case _:
            return FieldError.invalid(path, shown, message)


def _unevaluable(rule: Mapping[str, Any], place: _Place, reason: str, outcome: Outcome) -> None:
    text = f"validation rule {rule['rule']!r} at {place.path or _ROOT_PATH} was not enforced by the emulator: {reason}"
    outcome.warnings.append(text)
    if rule["rule"] not in _reported:
        _reported.add(rule["rule"])
        logger.warning("%s (see docs/troubleshooting.md)", text)


def _check(rule: Mapping[str, Any], place: _Place, outcome: Outcome) -> None:
    expression = str(rule.get("rule") or "")
    transition = bool(_OLD_SELF.search(expression))
    if transition and not place.has_old:
        if rule.get("optionalOldSelf"):
            _unevaluable(rule, place, "optionalOldSelf needs CEL optionals", outcome)
        return  # transition rules apply only where an old value exists
    if not transition and place.has_old and json_equal(place.value, place.old):
        return  # ratcheting: an unchanged value keeps passing
    activation = {"self": celpy.json_to_cel(place.value)}
    if transition:
        activation["oldSelf"] = celpy.json_to_cel(place.old)
    try:
        result = _run(expression, activation)
    except Unevaluable as error:
        _unevaluable(rule, place, str(error), outcome)
        return
    except celpy.CELEvalError as error:
        detail = str(error.args[0]) if error.args else str(error)
        outcome.errors.append(FieldError.invalid(place.path or _ROOT_PATH, place.schema.get("type") or "object",
                                                 f"{detail} evaluating rule: {expression}"))
        return
    if not isinstance(result, celtypes.BoolType | bool):
        outcome.errors.append(FieldError.invalid(place.path or _ROOT_PATH, place.schema.get("type") or "object",
                                                 f"rule did not evaluate to a bool: {expression}"))
    elif not result:
        outcome.errors.append(_field_error(rule, place, _message(rule, activation)))


def _list_old_items(value: list[Any], old: Any, has_old: bool, schema: Mapping[str, Any]) -> list[tuple[Any, bool]]:
    """The old value of each item, where the list type lets items correlate."""
    if not has_old or not isinstance(old, list):
        return [(None, False)] * len(value)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])

        def identity(item: Any) -> Any:
            return tuple(repr(item.get(key)) for key in keys) if isinstance(item, Mapping) else None

        by_key = {identity(item): item for item in old}
        return [(by_key[identity(item)], True) if identity(item) in by_key else (None, False) for item in value]
    if list_type == "set":
        return [(item, True) if any(json_equal(item, previous) for previous in old) else (None, False)
                for item in value]
    return [(None, False)] * len(value)


def _walk(place: _Place, outcome: Outcome) -> None:
    value, schema = place.value, place.schema
    if value is None:
        return
    for rule in schema.get(VALIDATIONS) or ():
        if isinstance(rule, Mapping) and rule.get("rule"):
            _check(rule, place, outcome)
    old_map = place.old if place.has_old and isinstance(place.old, Mapping) else {}
    if isinstance(value, Mapping):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                subschema, path = properties[key], child_path(place.path, key)
            elif isinstance(additional, Mapping):
                subschema, path = additional, f"{place.path}[{key}]"
            else:
                continue
            _walk(_Place(item, old_map.get(key), key in old_map, subschema, path), outcome)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        olds = _list_old_items(value, place.old, place.has_old, schema)
        for index, (item, (old_item, has_old_item)) in enumerate(zip(value, olds, strict=True)):
            _walk(_Place(item, old_item, has_old_item, schema["items"], f"{place.path}[{index}]"), outcome)


def validate(obj: Mapping[str, Any], previous: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> Outcome:
    """Every rule of the schema against ``obj``; ``previous`` is the stored object on updates."""
    outcome = Outcome()
    _walk(_Place(obj, previous, previous is not None, schema, ""), outcome)
    return outcome


def rules_of(schema: Mapping[str, Any], path: str = "") -> list[tuple[str, Mapping[str, Any]]]:
    """Every rule in a schema with the path it applies at (for documentation and tests)."""
    found = [(path or _ROOT_PATH, rule) for rule in schema.get(VALIDATIONS) or ()]
    for key, subschema in (schema.get("properties") or {}).items():
        found += rules_of(subschema, child_path(path, key))
    if isinstance(schema.get("items"), Mapping):
        found += rules_of(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        found += rules_of(schema["additionalProperties"], f"{path}[*]")
    return found
