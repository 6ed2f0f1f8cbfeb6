"""Terraform version constraints (`>= 1.5, < 2.0`, `~> 1.9`), as spec.terraformVersion writes them (pure)."""

from __future__ import annotations

import re

_PART = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*([0-9]+(?:\.[0-9]+){0,2})(?:-[0-9A-Za-z.]+)?\s*$")


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def satisfies(version: str, constraint: str) -> bool:
    """Whether `version` (e.g. 1.9.8) meets every comma-separated part of `constraint`."""
    have = _numbers(version.split("-")[0])
    padded = have + (0,) * (3 - len(have))
    for part in constraint.split(","):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a version constraint like >= 1.5 or ~> 1.9")
        operator, wanted_text = match.group(1) or "=", match.group(2)
        wanted = _numbers(wanted_text)
        full = wanted + (0,) * (3 - len(wanted))
        if operator == "~>":
            # ~> 1.9 allows 1.x >= 1.9; ~> 1.9.2 allows 1.9.x >= 1.9.2: the last given part may grow.
            prefix = wanted[:-1]
            ok = padded[: len(prefix)] == prefix and padded >= full
        else:
            ok = {"=": padded == full, "!=": padded != full, ">": padded > full, ">=": padded >= full,
                  "<": padded < full, "<=": padded <= full}[operator]
        if not ok:
            return False
    return True
