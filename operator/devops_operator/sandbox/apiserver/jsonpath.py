"""The JSONPath subset used by ``additionalPrinterColumns``.

Supported: ``.a.b``, ``['a.b']``, ``[0]``, ``[*]``, and filters ``[?(@.type=="Ready")]`` with
``==``/``!=`` against a quoted string, a number, or ``true``/``false``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[^.\[\]]+)"""
    r"""|\[\s*'(?P<quoted>[^']*)'\s*\]"""
    r"""|\[\s*(?P<index>-?\d+|\*)\s*\]"""
    r"""|\[\s*\?\(\s*@(?P<filter_path>(?:\.[^.=!\s)]+)+)\s*(?P<filter_op>==|!=)\s*(?P<filter_value>[^)]+?)\s*\)\s*\]"""
)


class JsonPathError(ValueError):
    """An expression outside the supported subset."""


def _literal(text: str) -> Any:
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    return json.loads(text)


def _follow(value: Any, path: str) -> Any:
    for field in path.strip(".").split("."):
        value = value.get(field) if isinstance(value, Mapping) else None
    return value


def _step(values: list[Any], match: re.Match[str]) -> list[Any]:
    results: list[Any] = []
    for value in values:
        if match["field"] is not None or match["quoted"] is not None:
            key = match["field"] if match["field"] is not None else match["quoted"]
            if isinstance(value, Mapping) and key in value:
                results.append(value[key])
        elif match["index"] is not None and isinstance(value, list):
            if match["index"] == "*":
                results.extend(value)
            elif -len(value) <= int(match["index"]) < len(value):
                results.append(value[int(match["index"])])
        elif match["filter_path"] is not None and isinstance(value, list):
            expected = _literal(match["filter_value"])
            for item in value:
                equal = _follow(item, match["filter_path"]) == expected
                if equal == (match["filter_op"] == "=="):
                    results.append(item)
    return results


def evaluate(obj: Any, expression: str) -> list[Any]:
    """All values the expression selects in ``obj`` (an empty list when nothing matches)."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = text.removeprefix("$")
    values: list[Any] = [obj]
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise JsonPathError(f"unsupported JSONPath {expression!r} at {text[position:]!r}")
        values = _step(values, match)
        position = match.end()
    return values
