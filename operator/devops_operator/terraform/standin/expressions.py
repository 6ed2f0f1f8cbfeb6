"""HCL expressions for the stand-in Terraform: templates, references, operators and a table of functions.

python-hcl2 parses the files' structure and hands expressions back as text (`${var.name}`, `"a-${x}"`);
this module evaluates that text. It covers what simple root modules use; anything else (for expressions,
splats, template directives, an unknown function) raises `Unsupported` naming the construct, so a module
the stand-in cannot run is refused with one clear line instead of being planned wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Unknown:
    """A value known only after apply (`(known after apply)` in a plan)."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN = Unknown()


class Unsupported(Exception):
    """A construct the stand-in does not implement: install terraform or tofu to use it."""

    def __init__(self, construct: str, where: str = "") -> None:
        at = f" (in {where})" if where else ""
        super().__init__(
            f"the stand-in Terraform (a test double) does not support {construct}{at}: "
            "install terraform or tofu to run this module"
        )
        self.construct = construct


class EvaluationError(Exception):
    """An expression is wrong as written (unknown variable, bad reference, wrong type)."""


def has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


# --------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<heredoc><<-?[A-Z]+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||=>|\.\.\.|\[\*\]|\.\*|[-+*/%<>!?:.,()\[\]{}=])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise EvaluationError(f"cannot read expression {text!r} at {text[pos:pos + 20]!r}")
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind)))
        pos = match.end()
    return tokens


# --------------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------------


def _format(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        value = next(values)
        return str(int(value)) if match.group(1) == "d" else _to_string(value)

    return re.sub(r"%%|%[-+0-9.]*([sdvq])", one, fmt)


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise EvaluationError(f"cannot use a {type(value).__name__} value as a string: {value!r}")
    return str(value)


def _merge(*maps: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for item in maps:
        if item is None:
            continue
        merged.update(item)
    return merged


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "merge": _merge,
    "concat": lambda *lists: [item for lst in lists for item in lst],
    "jsonencode": lambda value: json.dumps(value, separators=(",", ":"), sort_keys=True),
    "jsondecode": json.loads,
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "title": lambda s: s.title(),
    "trimspace": lambda s: s.strip(),
    "replace": lambda s, old, new: s.replace(old, new),
    "substr": lambda s, offset, length: s[int(offset):] if length == -1 else s[int(offset):int(offset) + int(length)],
    "format": _format,
    "join": lambda sep, items: sep.join(_to_string(i) for i in items),
    "split": lambda sep, s: s.split(sep),
    "length": len,
    "lookup": lambda m, key, *default: m[key] if key in m else (default[0] if default else _missing_key(key)),
    "keys": lambda m: sorted(m),
    "values": lambda m: [m[k] for k in sorted(m)],
    "contains": lambda items, value: value in items,
    "coalesce": lambda *values: next((v for v in values if v not in (None, "")), None),
    "tostring": _to_string,
    "tonumber": lambda v: float(v) if "." in str(v) else int(v),
    "tobool": lambda v: v if isinstance(v, bool) else str(v) == "true",
    "tolist": list,
    "toset": lambda items: sorted(set(items)),
    "tomap": dict,
    "min": min,
    "max": max,
    "abs": abs,
}


def _missing_key(key: str) -> Any:
    raise EvaluationError(f"lookup: the map has no key {key!r} and no default was given")


# --------------------------------------------------------------------------------------------------
# Parser and evaluator (one pass: expressions are small)
# --------------------------------------------------------------------------------------------------

Resolver = Callable[[Sequence[str]], Any]  # a reference's traversal (["var", "name"]) -> its value

_BINARY = {
    "||": (1, lambda a, b: a or b), "&&": (2, lambda a, b: a and b),
    "==": (3, lambda a, b: a == b), "!=": (3, lambda a, b: a != b),
    "<": (4, lambda a, b: a < b), ">": (4, lambda a, b: a > b), "<=": (4, lambda a, b: a <= b),
    ">=": (4, lambda a, b: a >= b),
    "+": (5, lambda a, b: a + b), "-": (5, lambda a, b: a - b),
    "*": (6, lambda a, b: a * b), "/": (6, lambda a, b: a / b), "%": (6, lambda a, b: a % b),
}


class _Parser:
    def __init__(self, text: str, resolve: Resolver, where: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.resolve = resolve
        self.where = where

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise EvaluationError(f"expected {text or 'more'} in {self.text!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.conditional()
        if self.peek() is not None:
            raise EvaluationError(f"unexpected {self.peek().text!r} in {self.text!r}")  # type: ignore[union-attr]
        return value

    def conditional(self) -> Any:
        condition = self.binary(0)
        if self.peek() and self.peek().text == "?":  # type: ignore[union-attr]
            self.take("?")
            yes = self.conditional()
            self.take(":")
            no = self.conditional()
            if condition is UNKNOWN:
                return UNKNOWN
            return yes if condition else no
        return condition

    def binary(self, min_precedence: int) -> Any:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token.kind != "op" or token.text not in _BINARY:
                return left
            precedence, apply = _BINARY[token.text]
            if precedence <= min_precedence:
                return left
            self.take()
            right = self.binary(precedence)
            left = UNKNOWN if UNKNOWN in (left, right) else apply(left, right)

    def unary(self) -> Any:
        token = self.peek()
        if token and token.text == "!":
            self.take()
            value = self.unary()
            return UNKNOWN if value is UNKNOWN else not value
        if token and token.text == "-":
            self.take()
            value = self.unary()
            return UNKNOWN if value is UNKNOWN else -value
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while self.peek() and self.peek().text in (".", "[", "[*]", ".*"):  # type: ignore[union-attr]
            token = self.take()
            if token.text in ("[*]", ".*"):
                raise Unsupported("splat expressions ([*])", self.where)
            if token.text == ".":
                key: Any = self.take().text
            else:
                key = self.conditional()
                self.take("]")
            value = _index(value, key)
        return value

    def primary(self) -> Any:
        token = self.take()
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "string":
            return template(token.text[1:-1], self.resolve, self.where)
        if token.kind == "heredoc":
            raise Unsupported("heredoc strings inside expressions", self.where)
        if token.text == "(":
            value = self.conditional()
            self.take(")")
            return value
        if token.text == "[":
            return self.sequence()
        if token.text == "{":
            return self.object()
        if token.kind != "name":
            raise EvaluationError(f"unexpected {token.text!r} in {self.text!r}")
        if token.text in ("true", "false"):
            return token.text == "true"
        if token.text == "null":
            return None
        if token.text == "for":
            raise Unsupported("for expressions", self.where)
        if self.peek() and self.peek().text == "(":  # type: ignore[union-attr]
            return self.call(token.text)
        return self.reference(token.text)

    def reference(self, root: str) -> Any:
        """`var.x`, `local.x`, `<type>.<name>`: two parts; attributes after them are indexes (postfix)."""
        parts = [root]
        token, following = self.peek(), self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        if token is not None and token.text == "." and following is not None and following.kind == "name":
            self.take(".")
            parts.append(self.take().text)
        return self.resolve(parts)

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        while self.peek() and self.peek().text != ")":  # type: ignore[union-attr]
            args.append(self.conditional())
            if self.peek() and self.peek().text == "...":  # type: ignore[union-attr]
                raise Unsupported("argument expansion (...)", self.where)
            if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.take(",")
        self.take(")")
        function = FUNCTIONS.get(name)
        if function is None:
            raise Unsupported(f"the function {name}()", self.where)
        if any(has_unknown(a) for a in args):
            return UNKNOWN
        try:
            return function(*args)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise EvaluationError(f"{name}(): {exc}") from exc

    def sequence(self) -> list[Any]:
        items = []
        while self.peek() and self.peek().text != "]":  # type: ignore[union-attr]
            if self.peek().text == "for":  # type: ignore[union-attr]
                raise Unsupported("for expressions", self.where)
            items.append(self.conditional())
            if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.take(",")
        self.take("]")
        return items

    def object(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.peek() and self.peek().text != "}":  # type: ignore[union-attr]
            if self.peek().text == "for":  # type: ignore[union-attr]
                raise Unsupported("for expressions", self.where)
            key_token = self.take()
            key = key_token.text[1:-1] if key_token.kind == "string" else key_token.text
            separator = self.take()
            if separator.text not in ("=", ":"):
                raise EvaluationError(f"expected = or : after {key!r} in {self.text!r}")
            result[key] = self.conditional()
            if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.take(",")
        self.take("}")
        return result


def _index(value: Any, key: Any) -> Any:
    if value is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    try:
        if isinstance(value, list):
            return value[int(key)]
        return value[key]
    except (KeyError, IndexError, TypeError, ValueError):
        raise EvaluationError(f"this value has no element {key!r}") from None


def expression(text: str, resolve: Resolver, where: str = "") -> Any:
    """The value of one HCL expression."""
    return _Parser(text, resolve, where).parse()


def _interpolations(body: str) -> list[tuple[str, bool]]:
    """Split a template into (literal, False) and (expression, True) parts."""
    parts: list[tuple[str, bool]] = []
    literal, i = "", 0
    while i < len(body):
        if body.startswith("$${", i):
            literal += "${"
            i += 3
        elif body.startswith("%%{", i):
            literal += "%{"
            i += 3
        elif body.startswith("%{", i):
            raise Unsupported("template directives (%{ ... })")
        elif body.startswith("${", i):
            depth, j = 1, i + 2
            in_string = False
            while j < len(body) and depth:
                char = body[j]
                if char == '"' and body[j - 1] != "\\":
                    in_string = not in_string
                elif not in_string and char == "{":
                    depth += 1
                elif not in_string and char == "}":
                    depth -= 1
                j += 1
            if depth:
                raise EvaluationError(f"unclosed ${{ in {body!r}")
            if literal:
                parts.append((literal, False))
                literal = ""
            parts.append((body[i + 2:j - 1], True))
            i = j
        elif body[i] == "\\" and i + 1 < len(body):
            literal += {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(body[i + 1], body[i + 1])
            i += 2
        else:
            literal += body[i]
            i += 1
    if literal:
        parts.append((literal, False))
    return parts


def template(body: str, resolve: Resolver, where: str = "") -> Any:
    """A string template; a template that is one interpolation keeps its value's type (as HCL does)."""
    parts = _interpolations(body)
    if len(parts) == 1 and parts[0][1]:
        return expression(parts[0][0], resolve, where)
    values = [expression(text, resolve, where) if is_expr else text for text, is_expr in parts]
    if any(v is UNKNOWN for v in values):
        return UNKNOWN
    return "".join(_to_string(v) for v in values)


def evaluate(value: Any, resolve: Resolver, where: str = "") -> Any:
    """Evaluate a value as python-hcl2 returns it (nested dicts and lists of expression text)."""
    if isinstance(value, Mapping):
        return {unquote(k): evaluate(v, resolve, where) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [evaluate(v, resolve, where) for v in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("<<"):
        return _heredoc(text)
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return template(text[1:-1], resolve, where)
    if text.startswith("${") and text.endswith("}"):
        return template(text, resolve, where)
    return expression(text, resolve, where)


def _heredoc(text: str) -> str:
    first, _, rest = text.partition("\n")
    marker = first.lstrip("<-").strip()
    body = rest.rsplit(marker, 1)[0]
    if first.startswith("<<-"):
        lines = body.splitlines()
        indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        body = "\n".join(line[indent:] for line in lines) + "\n"
    return body


def unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key.startswith('"') and key.endswith('"') else key


_REFERENCE = re.compile(r"(?<![\w.\"])([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)")


def references(value: Any) -> set[tuple[str, str]]:
    """Every `<root>.<name>` a value's expressions mention (for ordering resources; pure text scan)."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, Mapping):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, str):
        for text, is_expr in _safe_parts(value):
            if is_expr:
                found |= {(m.group(1), m.group(2)) for m in _REFERENCE.finditer(_strip_strings(text))}
    return found


def _safe_parts(value: str) -> list[tuple[str, bool]]:
    text = value.strip()
    try:
        if text.startswith('"') and text.endswith('"'):
            return _interpolations(text[1:-1])
        if text.startswith("${") and text.endswith("}"):
            return _interpolations(text)
    except (Unsupported, EvaluationError):
        return [(text, True)]
    return [(text, True)]


def _strip_strings(text: str) -> str:
    # References inside a nested string template still count: keep ${...} bodies, drop plain literals.
    return re.sub(r'"(?:[^"\\$]|\\.)*"', '""', text)
