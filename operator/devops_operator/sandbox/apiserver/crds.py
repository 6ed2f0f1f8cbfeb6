"""CustomResourceDefinitions: what a CRD declares, how it is checked, and the status it gets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kmock

from devops_operator.sandbox.apiserver import errors
from devops_operator.sandbox.apiserver.errors import FieldError
from devops_operator.sandbox.apiserver.metadata import now_timestamp

CRD_RESOURCE = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
CRD_KIND = "CustomResourceDefinition"
CUSTOM_RESOURCE_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
_SCOPES = ("Cluster", "Namespaced")


@dataclasses.dataclass(frozen=True)
class CustomResourceVersion:
    name: str
    storage: bool
    schema: Mapping[str, Any] | None
    printer_columns: tuple[Mapping[str, Any], ...]
    subresources: frozenset[str]


@dataclasses.dataclass(frozen=True)
class CustomResourceType:
    """Everything the server needs to serve the resources of one CRD."""

    crd_name: str
    group: str
    plural: str
    singular: str
    kind: str
    list_kind: str
    namespaced: bool
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    versions: tuple[CustomResourceVersion, ...]  # served versions only

    @property
    def storage_version(self) -> str:
        return next(version.name for version in self.versions if version.storage)

    def version(self, name: str | None) -> CustomResourceVersion | None:
        return next((version for version in self.versions if version.name == name), None)

    def resource(self, version: str) -> kmock.resource:
        return kmock.resource(self.group, version, self.plural)

    def resource_info(self, version: CustomResourceVersion) -> kmock.ResourceInfo:
        return kmock.ResourceInfo(
            kind=self.kind,
            singular=self.singular,
            namespaced=self.namespaced,
            verbs=set(CUSTOM_RESOURCE_VERBS),
            shortnames=set(self.short_names),
            categories=set(self.categories),
            subresources=set(version.subresources),
        )

    def accepted_names(self) -> dict[str, Any]:
        names: dict[str, Any] = {
            "plural": self.plural,
            "singular": self.singular,
            "kind": self.kind,
            "listKind": self.list_kind,
        }
        if self.short_names:
            names["shortNames"] = list(self.short_names)
        if self.categories:
            names["categories"] = list(self.categories)
        return names


def _required_errors(spec: Mapping[str, Any]) -> list[FieldError]:
    names: Mapping[str, Any] = spec["names"] if isinstance(spec.get("names"), Mapping) else {}
    checks = {
        "spec.group": spec.get("group"),
        "spec.names.plural": names.get("plural"),
        "spec.names.kind": names.get("kind"),
        "spec.scope": spec.get("scope"),
        "spec.versions": spec.get("versions"),
    }
    return [FieldError.required(field) for field, value in checks.items() if not value]


def _structure_errors(name: str, spec: Mapping[str, Any]) -> list[FieldError]:
    problems: list[FieldError] = []
    expected_name = f"{spec['names']['plural']}.{spec['group']}"
    if name != expected_name:
        problems.append(FieldError.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if spec["scope"] not in _SCOPES:
        problems.append(FieldError.not_supported("spec.scope", spec["scope"], _SCOPES))
    versions = spec["versions"]
    if sum(1 for version in versions if isinstance(version, Mapping) and version.get("storage")) != 1:
        problems.append(
            FieldError.invalid("spec.versions", versions, "must have exactly one version marked as storage version")
        )
    for index, version in enumerate(versions):
        if not isinstance(version, Mapping) or not version.get("name"):
            problems.append(FieldError.required(f"spec.versions[{index}].name"))
    return problems


def validate_crd(crd: Mapping[str, Any]) -> list[FieldError]:
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return [FieldError.required("spec")]
    return _required_errors(spec) or _structure_errors(crd.get("metadata", {}).get("name", ""), spec)


def _parse_version(version: Mapping[str, Any]) -> CustomResourceVersion:
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    return CustomResourceVersion(
        name=version["name"],
        storage=bool(version.get("storage")),
        schema=schema,
        printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
        subresources=frozenset((version.get("subresources") or {}).keys()),
    )


def parse_crd(crd: Mapping[str, Any]) -> CustomResourceType:
    """Read a CRD; raises a 422 Invalid ApiError for a CRD the real server would refuse."""
    name = crd.get("metadata", {}).get("name", "")
    problems = validate_crd(crd)
    if problems:
        raise errors.invalid("apiextensions.k8s.io", CRD_KIND, name, problems)
    spec = crd["spec"]
    names = spec["names"]
    kind = names["kind"]
    return CustomResourceType(
        crd_name=name,
        group=spec["group"],
        plural=names["plural"],
        singular=names.get("singular") or kind.lower(),
        kind=kind,
        list_kind=names.get("listKind") or f"{kind}List",
        namespaced=spec["scope"] == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        versions=tuple(_parse_version(version) for version in spec["versions"] if version.get("served", True)),
    )


def _condition(kind: str, reason: str, message: str, now: str) -> dict[str, str]:
    return {"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message}


def established_status(crd_type: CustomResourceType, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The status the CRD controllers would settle on: names accepted, established, versions stored."""
    now = now_timestamp()
    stored = list((previous or {}).get("storedVersions") or [])
    if crd_type.storage_version not in stored:
        stored.append(crd_type.storage_version)
    return {
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", now),
            _condition("Established", "InitialNamesAccepted", "the initial names have been accepted", now),
        ],
        "acceptedNames": crd_type.accepted_names(),
        "storedVersions": stored,
    }


def with_spec_defaults(crd: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the spec defaults the API server fills: singular, listKind, conversion strategy."""
    result = dict(crd)
    spec = dict(result.get("spec") or {})
    names = dict(spec.get("names") or {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
    spec["names"] = names
    spec.setdefault("conversion", {"strategy": "None"})
    result["spec"] = spec
    return result
