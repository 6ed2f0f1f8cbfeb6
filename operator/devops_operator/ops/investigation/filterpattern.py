"""CloudWatch Logs filter patterns, evaluated locally as well as by AWS.

AWS evaluates `filterPattern` itself; moto evaluates only a single bare word or one quoted phrase and
lets every event through for anything else (`?ERROR ?Exception`, exclusions). So the operator applies
the pattern's term syntax again to what comes back: the same events match against AWS and moto, and the
counts in status are the operator's own. Supported locally, as CloudWatch documents them:

- `ERROR Timeout` (every term), `"connection timeout"` (a quoted phrase as one term),
- `?ERROR ?Exception` (any of the `?` terms), `-DEBUG` (no event with the term);
- matching is case-sensitive and by substring, as in CloudWatch's term syntax.

JSON (`{ $.level = "error" }`) and space-delimited (`[ip, user, ...]`) patterns are left to AWS (they are
sent as written and not re-applied locally); `exact` says which case applies. The same terms build the
Logs Insights `filter` clause, which moto ignores too (only `fields`, `sort` and `limit` are honoured
there), so Insights results go through the same local filter.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# What "an error" looks like when the spec gives no filter (investigate mode).
DEFAULT_ERROR_TERMS: tuple[str, ...] = (
    "ERROR", "Error", "error", "FATAL", "Fatal", "fatal", "CRITICAL", "Critical", "Exception", "exception",
    "Traceback", "panic", "Timeout", "timeout", "timed out", "refused", "denied", "OutOfMemory",
    "out of memory", "Throttl", "throttl",
)


class FilterPatternError(ValueError):
    """The pattern cannot be parsed (unbalanced quotes)."""


@dataclass(frozen=True)
class FilterPattern:
    text: str
    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    # False for JSON and space-delimited patterns: AWS alone evaluates them.
    exact: bool = True

    def matches(self, message: str) -> bool:
        if not self.exact:
            return True
        if any(term in message for term in self.excluded):
            return False
        if any(term not in message for term in self.required):
            return False
        return not self.any_of or any(term in message for term in self.any_of)

    @property
    def matches_everything(self) -> bool:
        return self.exact and not (self.required or self.any_of or self.excluded)

    def insights_filter(self) -> str | None:
        """The Logs Insights `filter` clause for these terms (None: no clause)."""
        if not self.exact:
            return None
        clauses = [f"@message like /{_regex(term)}/" for term in self.required]
        if self.any_of:
            clauses.append("@message like /" + "|".join(_regex(term) for term in self.any_of) + "/")
        clauses += [f"@message not like /{_regex(term)}/" for term in self.excluded]
        return " and ".join(clauses) or None


def _regex(term: str) -> str:
    return re.escape(term).replace("/", r"\/")


def _quoted(term: str) -> str:
    return f'"{term}"' if re.search(r"[^A-Za-z0-9_]", term) else term


def default_pattern() -> FilterPattern:
    text = " ".join(f"?{_quoted(term)}" for term in DEFAULT_ERROR_TERMS)
    return FilterPattern(text=text, any_of=DEFAULT_ERROR_TERMS)


def parse(text: str | None) -> FilterPattern:
    """A filter pattern as written in the spec; None or blank matches every event."""
    source = (text or "").strip()
    if not source:
        return FilterPattern(text="")
    if source.startswith(("{", "[")):
        return FilterPattern(text=source, exact=False)
    try:
        tokens = shlex.split(source, posix=True)
    except ValueError as exc:
        raise FilterPatternError(f"filterPattern {source!r} cannot be parsed ({exc}): close every quote") from None
    required: list[str] = []
    any_of: list[str] = []
    excluded: list[str] = []
    for token in tokens:
        if token.startswith("?") and len(token) > 1:
            any_of.append(token[1:])
        elif token.startswith("-") and len(token) > 1:
            excluded.append(token[1:])
        elif token:
            required.append(token)
    return FilterPattern(text=source, required=tuple(required), any_of=tuple(any_of), excluded=tuple(excluded))
