"""One thing wrong with a spec, as every validator reports it: the field (as written in YAML) and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def field_path(loc: tuple[int | str, ...], root: str = "spec") -> str:
    """A pydantic error location as users write it: spec.environments[0].autoApprove."""
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
