"""kopf's last-handled configuration, kept small whatever the spec holds.

kopf stores the essence of every object it handled (spec, labels, annotations) in an annotation, to
tell what changed next time. A spec with large values (inline Terraform files, big variables) would be
copied there whole, and kubectl's own last-applied annotation copies it once more: together they could
push an object over the API server's 256 KiB limit on annotations. Here every long string is replaced
by its digest before it is stored: a change still changes the digest (so kopf still sees it), and the
annotation stays a few KiB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

from devops_operator.digests import digest

LONG_STRING = 256  # characters; shorter values are kept as they are, so diffs stay readable in logs
DIGEST_PREFIX = "sha256:"


def compact(value: Any) -> Any:
    """A copy of JSON-like data with every string longer than LONG_STRING replaced by its digest."""
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    if isinstance(value, str) and len(value) > LONG_STRING:
        return DIGEST_PREFIX + digest(value)
    return value


class CompactDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff-base storage, storing long strings as digests (see the module's docstring)."""

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[Any] | None = None,
    ) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        return cast(kopf.BodyEssence, compact(dict(essence)))
