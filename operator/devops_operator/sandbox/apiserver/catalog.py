"""Which resources the server serves, and how: kind, scope, subresources, schema, printer columns.

Built-in resources come from kmock's discovery records (``emulator.resources``); custom resources
come from registered CRDs and are added to those records so that discovery lists them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kmock

from devops_operator.sandbox.apiserver import builtin_schemas
from devops_operator.sandbox.apiserver.crds import CustomResourceType, CustomResourceVersion
from devops_operator.sandbox.apiserver.selectors import CUSTOM_RESOURCE_FIELDS


@dataclasses.dataclass(frozen=True)
class ServedResource:
    """A resource as requested (``resource``) and where its objects live (``storage``)."""

    resource: kmock.resource
    storage: kmock.resource
    kind: str
    namespaced: bool | None  # None: unknown scope (declared only implicitly in kmock)
    subresources: frozenset[str]
    custom: CustomResourceType | None = None
    custom_version: CustomResourceVersion | None = None

    @property
    def group(self) -> str:
        return self.resource.group or ""

    @property
    def plural(self) -> str:
        return self.resource.plural or ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.resource.version}" if self.group else f"{self.resource.version}"

    @property
    def list_kind(self) -> str:
        return self.custom.list_kind if self.custom else f"{self.kind}List"

    @property
    def has_status_subresource(self) -> bool:
        return "status" in self.subresources

    @property
    def schema(self) -> Mapping[str, Any] | None:
        return self.custom_version.schema if self.custom_version else None

    @property
    def admission_schema(self) -> Mapping[str, Any] | None:
        """What shapes writes: the CRD's schema, or the built-in kind's schema where the emulator has one."""
        if self.custom is not None:
            return self.schema
        return builtin_schemas.SCHEMAS.get((self.group, self.resource.version or "", self.kind))

    @property
    def printer_columns(self) -> tuple[Mapping[str, Any], ...]:
        return self.custom_version.printer_columns if self.custom_version else ()

    def supports_field_selector(self, path: str) -> bool:
        # Custom resources index only name & namespace; built-ins here are lenient on purpose.
        return path in CUSTOM_RESOURCE_FIELDS or self.custom is None


class ResourceCatalog:
    def __init__(
        self,
        resources: kmock.ResourcesArray,
        implicit_resources: Callable[[], Iterable[kmock.resource]],
    ) -> None:
        self._resources = resources
        self._implicit_resources = implicit_resources
        self._custom: dict[kmock.resource, CustomResourceType] = {}
        self.revision = 0  # grows whenever a CRD is (re)registered or removed: derived documents are stale then

    def register(self, crd_type: CustomResourceType) -> None:
        """Serve the CRD's versions (replacing what an earlier revision of the same CRD served)."""
        self.unregister(crd_type.crd_name)
        self.revision += 1
        for version in crd_type.versions:
            resource = crd_type.resource(version.name)
            self._resources[resource] = crd_type.resource_info(version)
            self._custom[resource] = crd_type

    def unregister(self, crd_name: str) -> CustomResourceType | None:
        removed = None
        for resource, crd_type in list(self._custom.items()):
            if crd_type.crd_name == crd_name:
                removed = crd_type
                self.revision += 1
                del self._custom[resource]
                if resource in self._resources:
                    del self._resources[resource]
        return removed

    def lookup(self, resource: kmock.resource) -> ServedResource | None:
        crd_type = self._custom.get(resource)
        if crd_type is not None:
            return self._custom_resource(resource, crd_type)
        if resource in self._resources:
            return self._builtin_resource(resource, self._resources[resource])
        if resource in set(self._implicit_resources()):
            return self._builtin_resource(resource, kmock.ResourceInfo())
        return None

    def all_served(self) -> list[ServedResource]:
        """Every resource served now (built-in, custom, and implied by stored objects), subresources aside."""
        resources = {resource for resource in self._resources if resource.plural and resource.version}
        resources |= {resource for resource in self._implicit_resources() if resource.plural and resource.version}
        found = (self.lookup(resource) for resource in resources)
        return [served for served in found if served is not None and "/" not in served.plural]

    def _custom_resource(self, resource: kmock.resource, crd_type: CustomResourceType) -> ServedResource:
        version = crd_type.version(resource.version)
        return ServedResource(
            resource=resource,
            storage=crd_type.resource(crd_type.storage_version),
            kind=crd_type.kind,
            namespaced=crd_type.namespaced,
            subresources=version.subresources if version else frozenset(),
            custom=crd_type,
            custom_version=version,
        )

    @staticmethod
    def _builtin_resource(resource: kmock.resource, info: kmock.ResourceInfo) -> ServedResource:
        plural = resource.plural or ""
        return ServedResource(
            resource=resource,
            storage=resource,
            kind=info.kind or plural.capitalize(),
            namespaced=info.namespaced,
            subresources=frozenset(info.subresources),
        )
