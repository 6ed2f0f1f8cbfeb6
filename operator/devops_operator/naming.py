"""Resource naming: the one place that validates, renders and checks naming patterns.

A pattern such as ``{organization}-{project}-{environment}-{resource}`` is validated once
(unknown placeholders, unbalanced braces, a pattern that cannot tell resources apart), then
rendered for concrete values and matched against existing names for compliance checks.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

PLACEHOLDERS: tuple[str, ...] = ("project", "subsystem", "environment", "resource", "organization")

# Lower-case words joined by single dashes: valid as an S3 bucket, IAM, Lambda or DNS label name.
_INVALID_CHARS = re.compile(r"[^a-z0-9-]+")
_DASH_RUNS = re.compile(r"-{2,}")
_LITERAL_CHARS = re.compile(r"^[A-Za-z0-9._-]*$")


class NamingError(ValueError):
    """A naming pattern or value that cannot produce valid names; the message says what to fix."""


@dataclass(frozen=True)
class NamingPattern:
    """A validated pattern: its literal text and the placeholders it uses, in order."""

    text: str
    placeholders: tuple[str, ...]

    def render(self, values: Mapping[str, str | None], *, max_length: int | None = None) -> str:
        """Render a name; every placeholder the pattern uses must have a non-empty value."""
        missing = [name for name in self.placeholders if not values.get(name)]
        if missing:
            raise NamingError(
                f"naming pattern {self.text!r} needs a value for {', '.join('{' + m + '}' for m in missing)}"
            )
        rendered = self.text.format_map({name: sanitize(values[name] or "") for name in self.placeholders})
        name = _DASH_RUNS.sub("-", rendered).strip("-")
        if max_length is not None and len(name) > max_length:
            raise NamingError(
                f"name {name!r} rendered from {self.text!r} is {len(name)} characters, over the limit of "
                f"{max_length}: shorten the project, subsystem or resource name, or raise naming.maxLength"
            )
        return name

    def regex(self, fixed: Mapping[str, str | None]) -> re.Pattern[str]:
        """A regex matching names this pattern renders; placeholders absent from `fixed` match any word."""
        parts: list[str] = []
        for literal, field, _spec, _conv in string.Formatter().parse(self.text):
            parts.append(re.escape(literal))
            if field is None:
                continue
            value = fixed.get(field)
            parts.append(re.escape(sanitize(value)) if value else r"[a-z0-9]+(?:-[a-z0-9]+)*")
        return re.compile("^" + "".join(parts) + "$")

    def matches(self, name: str, fixed: Mapping[str, str | None]) -> bool:
        """Whether an existing resource name follows this pattern for the fixed values given."""
        return bool(self.regex(fixed).match(name))


def sanitize(value: str) -> str:
    """Lower-case a value and turn anything but letters, digits and dashes into single dashes."""
    lowered = _INVALID_CHARS.sub("-", value.strip().lower())
    return _DASH_RUNS.sub("-", lowered).strip("-")


def parse_pattern(text: str) -> NamingPattern:
    """Validate a pattern; the error names the offending placeholder or character and the fix."""
    used: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise NamingError(f"naming pattern {text!r} has unbalanced braces ({exc}): write placeholders as {{name}}")\
            from exc
    for literal, field, spec, conversion in parsed:
        if not _LITERAL_CHARS.match(literal):
            raise NamingError(
                f"naming pattern {text!r} contains {literal!r}: literal text may hold only letters, digits, "
                "'.', '_' and '-'"
            )
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise NamingError(
                f"naming pattern {text!r} uses unknown placeholder {{{field}}}: allowed placeholders are "
                + " ".join("{" + p + "}" for p in PLACEHOLDERS)
            )
        if spec or conversion:
            raise NamingError(f"naming pattern {text!r}: placeholder {{{field}}} takes no format spec or conversion")
        used.append(field)
    if "resource" not in used:
        raise NamingError(
            f"naming pattern {text!r} has no {{resource}} placeholder: every resource would get the same name"
        )
    return NamingPattern(text=text, placeholders=tuple(used))
