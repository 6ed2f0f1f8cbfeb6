"""Discovery documents (``/apis``, ``/apis/{group}``, ``/api/v1``, ``/apis/{group}/{version}``).

kmock's own documents name the core group version ``/v1`` (kubectl then finds no core resources),
give subresources the short names of their parents (kubectl warns on every short name), and order
versions at random (so the preferred version changes between calls).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import kmock

_VERSION = re.compile(r"^v(?P<major>\d+)(?:(?P<stage>alpha|beta)(?P<minor>\d+))?$")
_STAGE_RANK = {None: 3, "beta": 2, "alpha": 1}
_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"]}


def _version_rank(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority: GA before beta before alpha, higher numbers first."""
    match = _VERSION.match(version)
    if match is None:
        return (0, 0, 0, version)
    minor = int(match["minor"] or 0)
    return (_STAGE_RANK[match["stage"]], int(match["major"]), minor, "")


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Versions in priority order; the first one is the preferred version."""
    return sorted(set(versions), key=lambda version: _version_rank(version), reverse=True)


def group_versions(resources: Iterable[kmock.resource]) -> dict[str, list[str]]:
    """Named API groups (not the core group) and their versions, in priority order."""
    found: dict[str, set[str]] = {}
    for resource in resources:
        if resource.group and resource.version and resource.plural:
            found.setdefault(resource.group, set()).add(resource.version)
    return {group: sort_versions(versions) for group, versions in sorted(found.items())}


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(groups: Mapping[str, list[str]]) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(group, versions) for group, versions in groups.items()],
    }


def _resource_entries(resource: kmock.resource, info: kmock.ResourceInfo) -> list[dict[str, Any]]:
    plural = resource.plural or ""
    kind = info.kind or plural.capitalize()
    main: dict[str, Any] = {
        "name": plural,
        "singularName": info.singular or "",
        "namespaced": bool(info.namespaced),
        "kind": kind,
        "verbs": sorted(info.verbs),
    }
    if info.shortnames:
        main["shortNames"] = sorted(info.shortnames)
    if info.categories:
        main["categories"] = sorted(info.categories)
    subresources = [
        {
            "name": f"{plural}/{subresource}",
            "singularName": "",
            "namespaced": bool(info.namespaced),
            "kind": kind,
            "verbs": _SUBRESOURCE_VERBS.get(subresource, ["get"]),
        }
        for subresource in sorted(info.subresources)
    ]
    return [main, *subresources]


def api_resource_list(
    group: str, version: str, resources: Iterable[tuple[kmock.resource, kmock.ResourceInfo]]
) -> dict[str, Any]:
    entries = [
        entry
        for resource, info in sorted(resources, key=lambda item: item[0].plural or "")
        for entry in _resource_entries(resource, info)
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }
