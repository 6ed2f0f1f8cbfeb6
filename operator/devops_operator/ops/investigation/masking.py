"""Masking: a log line with its variable parts (numbers, ids, UUIDs, timestamps, IPs, hex) replaced by
placeholders, so that lines that differ only in those parts share one signature.

Each rule is one compiled regular expression applied with `re.sub` and a constant replacement: the work
is linear in the length of the line and runs in C, with no Python call per match. The order matters:
timestamps and UUIDs before the generic hex and number rules, which would otherwise cut them apart.
"""

from __future__ import annotations

import re

MAX_SIGNATURE_CHARS = 300

# (placeholder, pattern), applied in order.
MASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # ISO 8601 / RFC 3339 and the common log layouts: 2024-01-02T03:04:05.678Z, 2024/01/02 03:04:05,
    # 2024-01-02 03:04:05 UTC, 02/Jan/2024:03:04:05 +0000, Jan  2 03:04:05
    ("<TS>", re.compile(
        r"\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
        r"|\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?:\s[+-]\d{4})?"
        r"|\b[A-Z][a-z]{2}\s{1,2}\d{1,2} \d{2}:\d{2}:\d{2}\b"
        r"|\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"
    )),
    ("<UUID>", re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")),
    ("<ARN>", re.compile(r"\barn:aws[a-zA-Z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:[^\s\"',;)\]]+")),
    # IPv4 with an optional port, and IPv6 in its full or compressed forms (at least three groups).
    ("<IP>", re.compile(
        r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"
        r"|(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{1,4}(?![\w:])"
    )),
    # Identifiers mixing letters and digits (i-0abc123d, req_8f3a9c, ecs-svc/1234 is numbers): at least
    # two digits, so words such as http2 or utf8 stay words.
    ("<ID>", re.compile(r"\b(?=[A-Za-z0-9_-]*[A-Za-z])(?=(?:[A-Za-z_-]*\d){2})[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)+\b")),
    ("<HEX>", re.compile(r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b")),
    # Numbers, except short digit runs inside a word (s3, ec2, http2, utf8 stay words).
    ("<NUM>", re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*|(?<=[A-Za-z])\d{3,}(?:[.,]\d+)*")),
)
_SPACES = re.compile(r"\s+")


def mask(line: str) -> str:
    """The signature of a log line: variable parts masked, whitespace collapsed, bounded in length."""
    text = line
    for placeholder, pattern in MASKS:
        text = pattern.sub(placeholder, text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > MAX_SIGNATURE_CHARS:
        text = text[: MAX_SIGNATURE_CHARS - 1] + "…"
    return text
