"""Label selectors and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

_SET_TERM = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EQUALITY_TERM = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(?P<negation>!?)\s*(?P<key>[^\s!=(),]+)\s*$")

# The only field selectors custom resources support; built-ins here accept any dotted path.
CUSTOM_RESOURCE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


class SelectorError(ValueError):
    """A selector that cannot be parsed; the API server answers 400 BadRequest."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One comma-separated term; ``operator`` is one of ``= != in notin exists !``."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":  # absent keys match negative requirements
                return not present or value not in self.values
            case "exists":
                return present
            case _:
                return not present


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    """All requirements must hold (comma means AND); an empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(requirement.matches(labels or {}) for requirement in self.requirements)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``in (a,b)`` value lists."""
    terms: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term for term in terms if term.strip()]


def _parse_requirement(term: str) -> Requirement:
    if match := _SET_TERM.match(term):
        values = frozenset(value.strip() for value in match["values"].split(",") if value.strip())
        return Requirement(match["key"], match["op"], values)
    if match := _EQUALITY_TERM.match(term):
        operator = "!=" if match["op"] == "!=" else "="
        return Requirement(match["key"], operator, frozenset({match["value"]}))
    if match := _EXISTS_TERM.match(term):
        return Requirement(match["key"], "!" if match["negation"] else "exists")
    raise SelectorError(f"unable to parse requirement: {term.strip()!r}")


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text:
        return LabelSelector()
    return LabelSelector(tuple(_parse_requirement(term) for term in _split_terms(text)))


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negated: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = _lookup_field(obj, self.path)
        equal = actual == self.value
        return not equal if self.negated else equal


def _lookup_field(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclasses.dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)


def parse_field_selector(text: str | None, is_supported: Callable[[str], bool]) -> FieldSelector:
    """Parse ``a.b=x,c!=y``; fields the resource does not index are refused like the real server."""
    if not text:
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in _split_terms(text):
        match = _EQUALITY_TERM.match(term)
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term.strip()}'")
        if not is_supported(match["key"]):
            raise SelectorError(f"field label not supported: {match['key']}")
        requirements.append(FieldRequirement(match["key"], match["value"], match["op"] == "!="))
    return FieldSelector(tuple(requirements))
