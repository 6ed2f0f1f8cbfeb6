"""Digests of what gets approved: one canonical form, so the same content always has the same digest.

An approval names a digest (a plan id, an impact assessment, an IAM statement); any change to what was
approved changes the digest and voids the approval (DESIGN §6). Canonical JSON: keys sorted, no
whitespace, UTF-8, so the digest does not depend on how a dict happened to be built.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """sha256 (hex) of the value's canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def short_digest(value: Any, length: int = 16) -> str:
    """The first `length` hex digits of `digest(value)`: an id a person can copy (64 bits by default)."""
    return digest(value)[:length]
