"""Owner references: children the operator creates are garbage-collected with their owner."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "devops-operator"


def owner_reference(
    obj: Mapping[str, Any], controller: bool = True, block_owner_deletion: bool = True
) -> dict[str, Any]:
    """An ownerReference pointing at `obj` (which must have been read back: it needs a uid)."""
    metadata = obj.get("metadata") or {}
    missing = [
        field
        for field, value in (
            ("apiVersion", obj.get("apiVersion")),
            ("kind", obj.get("kind")),
            ("metadata.name", metadata.get("name")),
            ("metadata.uid", metadata.get("uid")),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"cannot reference an owner without {', '.join(missing)}")
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def adopt(child: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `child` owned by `owner`: ownerReference, owner's namespace, managed-by label.

    Kubernetes garbage collection ignores an owner in another namespace (the child would be
    orphaned or deleted at once), so cross-namespace ownership is refused here.
    """
    reference = owner_reference(owner)
    result = copy.deepcopy(dict(child))
    metadata = result.setdefault("metadata", {})
    _place_in_owner_namespace(metadata, owner)
    metadata["ownerReferences"] = _with_reference(metadata.get("ownerReferences") or [], reference, metadata)
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY}
    return result


def _place_in_owner_namespace(metadata: dict[str, Any], owner: Mapping[str, Any]) -> None:
    owner_namespace = (owner.get("metadata") or {}).get("namespace")
    if not owner_namespace:
        return  # a cluster-scoped owner may own objects in any namespace
    child_namespace = metadata.get("namespace")
    if child_namespace and child_namespace != owner_namespace:
        raise ValueError(
            f"cannot own {metadata.get('name')!r} in namespace {child_namespace!r} "
            f"from namespace {owner_namespace!r}: owner references must not cross namespaces"
        )
    metadata["namespace"] = owner_namespace


def _with_reference(
    references: list[dict[str, Any]], reference: dict[str, Any], metadata: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Replace an existing reference to the same owner; refuse a second controller."""
    others = [ref for ref in references if ref.get("uid") != reference["uid"]]
    if reference.get("controller") and any(ref.get("controller") for ref in others):
        raise ValueError(f"{metadata.get('name')!r} already has a controller owner reference")
    if len(others) == len(references):
        return [*references, reference]
    # Keep the existing position so re-adopting does not reorder (and needlessly rewrite) the list.
    return [reference if ref.get("uid") == reference["uid"] else dict(ref) for ref in references]
