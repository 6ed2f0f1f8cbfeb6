"""Write semantics of the API server, independent of HTTP: create, update, delete, GC, CRDs.

Every method here is synchronous. On the event loop that makes each write atomic without locks:
nothing else runs between reading the stored object and storing its next state.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import kmock

from devops_operator.sandbox.apiserver import cel, crds, defaults, errors, limits, metadata, schema, validation
from devops_operator.sandbox.apiserver.catalog import ResourceCatalog, ServedResource
from devops_operator.sandbox.apiserver.decoding import IGNORE, STRICT, WARN
from devops_operator.sandbox.apiserver.errors import FieldError
from devops_operator.sandbox.apiserver.store import ObjectKey, ObjectStore
from devops_operator.sandbox.apiserver.watching import ADDED, MODIFIED

NAMESPACES = kmock.resource("", "v1", "namespaces")
PODS = kmock.resource("", "v1", "pods")
DEFAULT_POD_GRACE_SECONDS = 30  # the default of spec.terminationGracePeriodSeconds
_GENERATE_NAME_ATTEMPTS = 10


@dataclasses.dataclass(frozen=True)
class Target:
    """What a write addresses: the resource, the URL's namespace and name, and the request options."""

    served: ServedResource
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    field_validation: str = WARN  # Ignore, Warn or Strict: what unknown and duplicate fields do
    duplicates: tuple[str, ...] = ()  # duplicate fields the body decoder found
    dry_run: bool = False  # check everything, store nothing (?dryRun=All)
    warnings: list[str] = dataclasses.field(default_factory=list)  # for the response's Warning header

    def key(self, name: str) -> ObjectKey:
        namespace = None if self.served.namespaced is False else self.namespace
        return self.served.storage, namespace, name


@dataclasses.dataclass(frozen=True)
class Deletion:
    """The outcome of a delete: ``gone`` if removed now, otherwise marked and waiting on finalizers."""

    obj: dict[str, Any]
    gone: bool


class ObjectLifecycle:
    def __init__(self, store: ObjectStore, catalog: ResourceCatalog) -> None:
        self._store = store
        self._catalog = catalog

    # --- create -------------------------------------------------------------------------------

    def create(self, target: Target, body: Any) -> dict[str, Any]:
        served = target.served
        obj = self._object_body(body, served)
        meta = obj["metadata"]
        target = self._place_in_namespace(target, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._unused_name(target, str(meta["generateName"]))
        for field in metadata.SERVER_OWNED_FIELDS:
            meta.pop(field, None)
        if served.has_status_subresource:
            obj.pop("status", None)  # only the status subresource writes status
        obj = self._admit(target, obj, previous=None)
        meta = obj["metadata"]
        if self._store.get(target.key(meta["name"])) is not None:
            raise errors.already_exists(served.group, served.plural, meta["name"])
        meta.update(uid=metadata.new_uid(), creationTimestamp=metadata.now_timestamp(), generation=1)
        obj = self._before_store(target, obj, previous=None)
        if target.dry_run:
            return obj
        limits.check_storage_size(target.key(meta["name"]), obj)
        stored = self._store.write(target.key(meta["name"]), obj, ADDED)
        self._after_store(stored, served)
        return stored

    def _object_body(self, body: Any, served: ServedResource) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise errors.bad_request(f"Object '{served.kind}' is missing or is not a JSON object in the request body")
        obj = copy.deepcopy(dict(body))
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != served.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({served.api_version})"
            )
        if kind and kind != served.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({served.kind})")
        obj["apiVersion"], obj["kind"] = served.api_version, served.kind
        obj["metadata"] = dict(obj["metadata"]) if isinstance(obj.get("metadata"), Mapping) else {}
        return obj

    @staticmethod
    def _place_in_namespace(target: Target, meta: dict[str, Any]) -> Target:
        """The URL decides the namespace; a body that disagrees is refused like the real server does."""
        if target.served.namespaced is False:
            meta.pop("namespace", None)
            return target
        if target.namespace is None:
            if target.served.namespaced:
                raise errors.method_not_allowed()
            return dataclasses.replace(target, namespace=meta.get("namespace"))  # scope unknown: trust the body
        if meta.get("namespace") and meta["namespace"] != target.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = target.namespace
        return target

    def _unused_name(self, target: Target, prefix: str) -> str:
        for _ in range(_GENERATE_NAME_ATTEMPTS):
            name = metadata.generate_name(prefix)
            if self._store.get(target.key(name)) is None:
                return name
        raise errors.already_exists(target.served.group, target.served.plural, f"{prefix}*")

    # --- admission: metadata checks, pruning, defaulting, schema validation ---------------------

    def _admit(self, target: Target, obj: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """Decode-time field checks, then defaults, then validation (schema, CEL, limits), as the real server."""
        served = target.served
        obj = self._shape(target, obj)
        meta = obj["metadata"]
        is_namespace = served.storage == NAMESPACES
        problems = metadata.validate_name(meta, label_only=is_namespace) + metadata.validate_metadata_types(meta)
        problems += limits.metadata_size_errors(meta)
        if served.schema is not None:
            schema_problems = validation.validate_object(obj, served.schema)
            problems += schema_problems
            if not validation.blocks_rules(schema_problems):
                outcome = cel.validate(obj, previous, served.schema)
                problems += outcome.errors
                target.warnings.extend(outcome.warnings)
            elif cel.rules_of(served.schema):
                problems.append(validation.RULES_NOT_CHECKED)
        if served.storage == crds.CRD_RESOURCE:
            problems += crds.validate_crd(obj)
        if problems:
            raise errors.invalid(served.group, served.kind, str(meta.get("name") or ""), problems)
        return obj

    def _shape(self, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        """Prune what the schema does not declare and judge unknown and duplicate fields by fieldValidation."""
        served = target.served
        obj, unknown = metadata.prune_unknown_fields(obj)
        structural = served.admission_schema
        if structural is not None:
            obj, unknown_in_body = schema.prune(obj, structural)
            unknown += unknown_in_body
        problems = [*target.duplicates, *(f'unknown field "{field}"' for field in sorted(unknown))]
        if problems and target.field_validation == STRICT:
            raise errors.strict_decoding(served.kind, served.resource.version or "", problems)
        if problems and target.field_validation != IGNORE:
            target.warnings.extend(problems)
        return schema.apply_defaults(obj, structural) if served.custom is not None and structural is not None else obj

    # --- update -------------------------------------------------------------------------------

    def current(self, target: Target) -> dict[str, Any]:
        """The stored object the target names, or 404 NotFound."""
        served = target.served
        if target.subresource not in (None, "status") or (
            target.subresource == "status" and not served.has_status_subresource
        ):
            raise errors.resource_not_found()
        assert target.name is not None  # updates always address one object
        current = self._store.get(target.key(target.name))
        if current is None:
            raise errors.not_found(served.group, served.plural, target.name)
        return current

    def update(self, target: Target, current: dict[str, Any], candidate: Any) -> dict[str, Any]:
        """Store ``candidate`` (a full object: a PUT body or the result of a patch) over ``current``."""
        served = target.served
        if not isinstance(candidate, Mapping):
            raise errors.bad_request(f"Object '{served.kind}' is missing or is not a JSON object in the request body")
        self._check_preconditions(target, current, candidate)
        if target.subresource == "status":
            updated = self._status_update(current, candidate)
        else:
            updated = self._main_update(current, candidate, served)
        self._check_no_new_finalizers(current, updated, served)
        updated = self._admit(target, updated, previous=current)
        if updated == current:
            return current  # a no-op write: no new resourceVersion, no event (as the real server)
        if metadata.content_changed(current, updated, status_is_separate=served.has_status_subresource):
            updated["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        updated = self._before_store(target, updated, previous=current)
        if target.dry_run:
            return updated
        limits.check_storage_size(target.key(current["metadata"]["name"]), updated)
        stored = self._store.write(target.key(current["metadata"]["name"]), updated, MODIFIED)
        self._after_store(stored, served)
        # Removed once the last finalizer goes, unless a graceful deletion (a pod's) still waits for its kubelet.
        if (stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers")
                and not stored["metadata"].get("deletionGracePeriodSeconds")):
            self.remove(target.key(current["metadata"]["name"]))
        return stored

    def _check_preconditions(self, target: Target, current: Mapping[str, Any], candidate: Mapping[str, Any]) -> None:
        served = target.served
        meta: Mapping[str, Any] = candidate["metadata"] if isinstance(candidate.get("metadata"), Mapping) else {}
        name = current["metadata"]["name"]
        wanted_version = meta.get("resourceVersion")
        if wanted_version not in (None, "") and str(wanted_version) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(served.group, served.plural, name)
        if meta.get("uid") and meta["uid"] != current["metadata"].get("uid"):
            detail = f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
            raise errors.conflict(served.group, served.plural, name, detail + str(current["metadata"].get("uid")))
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if target.namespace and meta.get("namespace") and meta["namespace"] != target.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    @staticmethod
    def _status_update(current: Mapping[str, Any], candidate: Mapping[str, Any]) -> dict[str, Any]:
        """Through ``/status`` only ``.status`` changes; everything else is kept as stored."""
        updated = copy.deepcopy(dict(current))
        if "status" in candidate:
            updated["status"] = copy.deepcopy(candidate["status"])
        else:
            updated.pop("status", None)
        return updated

    @staticmethod
    def _main_update(
        current: Mapping[str, Any], candidate: Mapping[str, Any], served: ServedResource
    ) -> dict[str, Any]:
        """The client's object, except what the server owns: identity, timestamps, and maybe status."""
        updated = copy.deepcopy(dict(candidate))
        meta = dict(updated["metadata"]) if isinstance(updated.get("metadata"), Mapping) else {}
        for field in metadata.IMMUTABLE_FIELDS:
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        updated["metadata"] = meta
        updated["apiVersion"], updated["kind"] = current["apiVersion"], current["kind"]
        if served.has_status_subresource:
            if "status" in current:
                updated["status"] = copy.deepcopy(current["status"])
            else:
                updated.pop("status", None)
        return updated

    @staticmethod
    def _check_no_new_finalizers(
        current: Mapping[str, Any], updated: Mapping[str, Any], served: ServedResource
    ) -> None:
        if not current["metadata"].get("deletionTimestamp"):
            return
        added = set(updated["metadata"].get("finalizers") or ()) - set(current["metadata"].get("finalizers") or ())
        if added:
            detail = "no new finalizers can be added if the object is being deleted, found new finalizers "
            detail += str(sorted(added))
            problem = FieldError.forbidden("metadata.finalizers", detail)
            raise errors.invalid(served.group, served.kind, current["metadata"]["name"], [problem])

    # --- delete -------------------------------------------------------------------------------

    def delete(self, key: ObjectKey, *, collect_dependents: bool = True,
               grace_period: int | None = None) -> Deletion | None:
        """Delete now, or mark for deletion while finalizers remain (or, for a pod, while its kubelet stops
        it: graceful deletion); ``None`` if there is no object."""
        current = self._store.get(key)
        if current is None:
            return None
        if key[0] == PODS:
            graceful = self._graceful_pod_delete(key, current, grace_period)
            if graceful is not None:
                return graceful
        meta = current["metadata"]
        if meta.get("deletionTimestamp"):
            return Deletion(current, gone=False)
        if meta.get("finalizers"):
            marked = copy.deepcopy(current)
            marked["metadata"].update(
                deletionTimestamp=metadata.now_timestamp(),
                deletionGracePeriodSeconds=0,
                generation=int(meta.get("generation", 1)) + 1,
            )
            return Deletion(self._store.write(key, marked, MODIFIED), gone=False)
        self.remove(key, collect_dependents=collect_dependents)
        return Deletion(current, gone=True)

    def _graceful_pod_delete(self, key: ObjectKey, current: dict[str, Any],
                             grace_period: int | None) -> Deletion | None:
        """A pod bound to a node is not removed at once: as the real server does (the pod strategy's
        CheckGracefulDelete), it gets ``deletionTimestamp`` = now + the grace period and
        ``deletionGracePeriodSeconds``, and stays until its kubelet has stopped its containers and deletes it
        again with a grace period of 0. The grace period is the request's ``gracePeriodSeconds``, else the
        pod's ``spec.terminationGracePeriodSeconds`` (default 30); a pod never scheduled or already
        Succeeded/Failed has nothing to stop and goes at once. A second delete may shorten the grace period,
        never lengthen it. Returns None where the ordinary delete (finalizers, then removal) follows."""
        meta, spec = current["metadata"], current.get("spec") or {}
        phase = (current.get("status") or {}).get("phase")
        if grace_period is None:
            grace_period = spec.get("terminationGracePeriodSeconds")
            grace_period = DEFAULT_POD_GRACE_SECONDS if grace_period is None else int(grace_period)
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            grace_period = 0
        grace_period = max(0, int(grace_period))
        if grace_period == 0:
            if not meta.get("deletionTimestamp"):
                return None
            if meta.get("finalizers"):  # the kubelet's confirmation: the finalizers alone hold it now
                ended = copy.deepcopy(current)
                ended["metadata"]["deletionGracePeriodSeconds"] = 0
                return Deletion(self._store.write(key, ended, MODIFIED), gone=False)
            self.remove(key)
            return Deletion(current, gone=True)
        if meta.get("deletionTimestamp") and grace_period >= int(meta.get("deletionGracePeriodSeconds") or 0):
            return Deletion(current, gone=False)  # already terminating, with a shorter or equal grace
        marked = copy.deepcopy(current)
        marked["metadata"].update(
            deletionTimestamp=metadata.timestamp_in(grace_period),
            deletionGracePeriodSeconds=grace_period,
            generation=int(meta.get("generation", 1)) + (0 if meta.get("deletionTimestamp") else 1),
        )
        return Deletion(self._store.write(key, marked, MODIFIED), gone=False)

    def remove(self, key: ObjectKey, *, collect_dependents: bool = True) -> None:
        """The final removal: the object goes, then what it owned (background propagation)."""
        final = self._store.remove(key)
        if final is None:
            return
        self._after_removal(key, final)
        if collect_dependents:
            self._collect_dependents(final["metadata"].get("uid"))

    def _collect_dependents(self, owner_uid: str | None) -> None:
        if not owner_uid:
            return
        for key, obj in self._store.all_items():
            references = obj["metadata"].get("ownerReferences") or []
            if not any(reference.get("uid") == owner_uid for reference in references):
                continue
            other_owners = [reference.get("uid") for reference in references if reference.get("uid") != owner_uid]
            if not any(self._uid_exists(uid) for uid in other_owners):
                self.delete(key)

    def _uid_exists(self, uid: str | None) -> bool:
        return any(obj["metadata"].get("uid") == uid for _, obj in self._store.all_items())

    def _after_removal(self, key: ObjectKey, final: Mapping[str, Any]) -> None:
        if key[0] == crds.CRD_RESOURCE:
            self._drop_custom_resources(final["metadata"]["name"])
        elif key[0] == NAMESPACES:
            for object_key, _ in self._store.all_items():
                if object_key[1] == key[2]:
                    self.delete(object_key)

    # --- CRDs -----------------------------------------------------------------------------------

    def _before_store(self, target: Target, obj: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """Built-in defaults (a Namespace is Active, a Secret's stringData lands in data); CRDs get their
        spec defaults and the status their controllers would set."""
        obj = defaults.apply_builtin_defaults(target.served, obj, previous)
        if target.served.storage != crds.CRD_RESOURCE or target.subresource == "status":
            return obj
        obj = crds.with_spec_defaults(obj)
        crd_type = crds.parse_crd(obj)
        obj["status"] = crds.established_status(crd_type, (previous or {}).get("status"))
        return obj

    def _after_store(self, stored: Mapping[str, Any], served: ServedResource) -> None:
        if served.storage == crds.CRD_RESOURCE and not stored["metadata"].get("deletionTimestamp"):
            self._catalog.register(crds.parse_crd(stored))

    def _drop_custom_resources(self, crd_name: str) -> None:
        crd_type = self._catalog.unregister(crd_name)
        if crd_type is None:
            return
        storage = crd_type.resource(crd_type.storage_version)
        for key, _ in self._store.items(storage):
            self._store.forget(key)
