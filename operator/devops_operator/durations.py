"""Go-style durations as the specs write them (`30s`, `5m`, `1h30m`, `7d`; api.common.DURATION_PATTERN)."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """`1h30m` -> 90 minutes; ValueError naming the text for anything else."""
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h30m or 7d")
    return timedelta(seconds=sum(float(number) * _SECONDS[unit] for number, unit in parts))


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 90 minutes -> `1h30m`, 1 day -> `1d`."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    out, rest = "", total
    for unit in ("d", "h", "m", "s"):
        size = _SECONDS[unit]
        if rest >= size:
            count = int(rest // size)
            out += f"{count}{unit}"
            rest -= count * size
    if rest > 1e-9:
        out += f"{round(rest * 1000)}ms"
    return out
