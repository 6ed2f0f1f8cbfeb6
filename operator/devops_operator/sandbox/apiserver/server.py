"""The emulated API server: kmock's ``KubernetesEmulator`` with the semantics of a real API server.

Requests are still recorded in kmock's request log and still pass through kmock's reactions, so
tests can keep intercepting them with the DSL (``emulator['list', resource] << ...``). Writes are
applied before the reactions run (as kmock does), using :mod:`lifecycle`; reads fall back to the
handlers here when no reaction answers.

One exception, as a real API server behaves: a reaction that answers a write with an error status
(``emulator['put /api/v1/namespaces/ns/configmaps/cm'][:2] << 429``) refuses it, and nothing is
stored, the way API priority and fairness (429), an unavailable server (503) or admission refuse a
request before it is persisted. Only a status the reaction declares counts; a callable payload
answers after the write, as in kmock.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock

# kmock wraps failures of already-started streams in this internal error; we unwrap it the same way.
from kmock._internal.rendering import StreamingError

from devops_operator.sandbox.apiserver import (
    crds,
    decoding,
    discovery,
    errors,
    limits,
    openapi,
    paths,
    printers,
    selectors,
    swagger_proto,
    tables,
    watching,
)
from devops_operator.sandbox.apiserver.catalog import ResourceCatalog, ServedResource
from devops_operator.sandbox.apiserver.lifecycle import ObjectLifecycle, Target
from devops_operator.sandbox.apiserver.matching import serving_order, spent, view_has
from devops_operator.sandbox.apiserver.patching import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchConflict,
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from devops_operator.sandbox.apiserver.store import ObjectStore, ResourceVersionClock
from devops_operator.sandbox.apiserver.watching import EventHub, EventLog

Matcher = Callable[[Mapping[str, Any]], bool]
Renderer = Callable[[Mapping[str, Any]], dict[str, Any]]

_WRITES = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
_OPENAPI_V2_PATH = re.compile(r"/openapi/v2/?")
_OPENAPI_V3_PATH = re.compile(r"/openapi/v3(/.*)?")
_HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
_SERVER_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-devops-sandbox",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_CRD_DISCOVERY = kmock.ResourceInfo(
    kind=crds.CRD_KIND,
    singular="customresourcedefinition",
    namespaced=False,
    verbs=set(crds.CUSTOM_RESOURCE_VERBS),
    shortnames={"crd", "crds"},
    categories={"api-extensions"},
    subresources={"status"},
)


def _header(request: kmock.Request, name: str) -> str:
    """Headers are recorded in a plain dict; HTTP header names are case-insensitive."""
    wanted = name.lower()
    return next((value for key, value in request.headers.items() if key.lower() == wanted), "")


def _content_type(request: kmock.Request) -> str:
    return _header(request, "Content-Type").split(";")[0].strip().lower()


# kmock merges the headers of a callback's Response into its reaction for good: later answers of the
# same reaction would repeat them. Every header set anywhere is therefore named in every answer.
_HEADERS_SET = ("Warning", "Content-Type", "Cache-Control")


def _headers(**values: str) -> dict[str, str | None]:
    named = {name.replace("_", "-").title(): value for name, value in values.items()}
    return {name: named.get(name) for name in _HEADERS_SET}


def _present(obj: Mapping[str, Any], served: ServedResource) -> dict[str, Any]:
    """An object as served under the requested version: ``apiVersion`` and ``kind`` first."""
    rest = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    return {"apiVersion": served.api_version, "kind": served.kind, **rest}


def _grace_period(request: kmock.Request, options: Mapping[str, Any]) -> int | None:
    """DeleteOptions.gracePeriodSeconds, from the body or the query (kubectl sends it in the body)."""
    raw = options.get("gracePeriodSeconds")
    if raw is None:
        raw = request.params.get("gracePeriodSeconds")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise errors.bad_request(f"gracePeriodSeconds: Invalid value: {raw!r}: must be an integer") from None


def _success_status(served: ServedResource, obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": meta.get("name"),
            "group": served.group,
            "kind": served.plural,
            "uid": meta.get("uid"),
        },
    }


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """An in-memory Kubernetes API server with real API-server semantics.

    Server-side metadata (uid, resourceVersion, generation, timestamps), optimistic concurrency,
    the status subresource, merge/strategic/JSON patches and PUT, selectors, resumable watches,
    finalizers and garbage collection, CRD registration with schema validation, defaulting and
    pruning, and Tables for ``kubectl get``.
    """

    event_history: int = 1000  # changes kept per resource for watches resuming from a resourceVersion
    # kmock matches every request against its whole request log, so an unbounded log makes each
    # request slower than the last (and grows memory in a long sandbox run): keep the newest only.
    request_log_limit: int = 2000

    _catalog: ResourceCatalog = attrs.field(init=False)
    _store: ObjectStore = attrs.field(init=False)
    _lifecycle: ObjectLifecycle = attrs.field(init=False)
    _outcomes: dict[int, kmock.Response] = attrs.field(factory=dict, init=False)
    _order_of: list[kmock.Reaction] = attrs.field(factory=list, init=False)
    _order: list[kmock.Reaction] = attrs.field(factory=list, init=False)
    _requests_served: int = attrs.field(default=0, init=False)
    _openapi_cache: dict[Any, Any] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._catalog = ResourceCatalog(self._resources, self._get_resources)
        self._store = ObjectStore(self._objects, ResourceVersionClock(), EventHub(self.event_history))
        self._lifecycle = ObjectLifecycle(self._store, self._catalog)
        self.fallback["get", _OPENAPI_V2_PATH] << self._serve_openapi_v2
        self.fallback["get", _OPENAPI_V3_PATH] << self._serve_openapi_v3
        for probe in _HEALTH_PATHS:
            self.fallback[f"get {probe}"] << b"ok"

    # --- Python-side API ------------------------------------------------------------------------

    @property
    def requests_served(self) -> int:
        """How many requests the server has answered since it started (the log keeps only the newest)."""
        return self._requests_served

    @property
    def requests(self) -> list[kmock.Request]:
        """The newest requests received (up to `request_log_limit`), in order (kmock's request log)."""
        return list(self._requests)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion (the one the next list would report)."""
        return self._store.clock.current

    def register_crd(self, crd: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a CRD as if applied through the API; its resources are served at once."""
        if crds.CRD_RESOURCE not in self._resources:
            self._resources[crds.CRD_RESOURCE] = copy.deepcopy(_CRD_DISCOVERY)
        return self.apply_object(crds.CRD_RESOURCE, crd)

    def apply_object(self, resource: kmock.resource | str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object, or replace it unconditionally if it exists, with full server semantics.

        Raises :class:`ApiError` exactly where the HTTP API would answer with an error status.
        """
        served = self._catalog.lookup(kmock.resource(resource))
        if served is None:
            raise errors.resource_not_found()
        meta = body.get("metadata") or {}
        namespace = None if served.namespaced is False else meta.get("namespace") or "default"
        target = Target(served, namespace)
        current = self._store.get(target.key(meta["name"])) if meta.get("name") else None
        if current is None:
            return _present(self._lifecycle.create(target, body), served)
        candidate = copy.deepcopy(dict(body))
        candidate.setdefault("metadata", {}).pop("resourceVersion", None)
        updated = self._lifecycle.update(Target(served, namespace, meta["name"]), current, candidate)
        return _present(updated, served)

    # --- HTTP plumbing --------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's entry point, with a request parser that knows all Kubernetes URLs and verbs."""
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            if self.limit is not None and len(self._requests) >= self.limit:
                raise kmock.KMockError("Too many requests have been served so far.")
            try:
                limits.check_request_size(raw_request.content_length)
                request = await paths.parse_request(raw_request, request_id=self._requests_served)
            except errors.ApiError as error:  # refused before it is even read, as kube-apiserver does
                return error.as_response()
            self._requests_served += 1
            self._requests.append(request)
            if len(self._requests) > self.request_log_limit:
                del self._requests[: len(self._requests) - self.request_log_limit]
            try:
                return await self._handle(request)
            except StreamingError as error:
                raw_response = error.args[0]
                raise error.__cause__ or error from None
        except Exception as error:
            return await self._fail(error, raw_response)

    async def _fail(
        self, error: Exception, raw_response: aiohttp.web.StreamResponse | None
    ) -> aiohttp.web.StreamResponse:
        # As in kmock: outside of its context manager, let the web server handle it; inside, keep it.
        if not self._errors:
            raise error
        self._errors[-1].append(error)
        if raw_response is None or not raw_response.prepared:
            return await self._render_error(error)
        await self._stream_error(error, raw_response)
        await raw_response.write_eof()
        return raw_response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is None or request.resource.plural is None:  # not a resource: discovery etc.
            return await self._react(request, self._candidates(request))
        try:
            served = self._served(request)
            candidates = self._candidates(request)
            if request.action in _WRITES:
                refusal, candidates = await self._refusal(request, candidates)
                if refusal is not None:
                    return refusal
                self._outcomes[request.id] = self._write(request, served)
            elif request.action is None:
                raise errors.method_not_allowed()
            return await self._react(request, candidates)
        except errors.ApiError as error:
            return error.as_response()
        finally:
            self._outcomes.pop(request.id, None)

    def _candidates(self, request: kmock.Request) -> Iterator[kmock.Reaction]:
        """The reactions that match this request, lazily, in kmock's serving order (user reactions
        first, our fallbacks last), each decided for this one request in constant time."""
        for reaction in self._serving_order():
            if reaction._disabled.is_set():
                continue
            if spent(reaction._source):  # a test's one-off refusal, say: never asked again, as if depleted
                reaction._disabled.set()
                continue
            if view_has(reaction._source, request):
                yield reaction

    def _serving_order(self) -> list[kmock.Reaction]:
        # Sorting walks every reaction's priority chain: redo it only when the reactions changed
        # (kmock replaces a reaction's object when it is extended, so identity tells).
        payloads = self._payloads
        cached = self._order_of
        if len(cached) != len(payloads) or any(a is not b for a, b in zip(cached, payloads, strict=True)):
            self._order_of = list(payloads)
            self._order = serving_order(self._order_of)
        return self._order

    async def _react(self, request: kmock.Request, candidates: Iterator[kmock.Reaction]) -> aiohttp.web.StreamResponse:
        """kmock's reaction matching: the first candidate with an answer answers."""
        for reaction in candidates:
            if reaction._disabled.is_set():
                continue
            try:
                return await reaction(request)
            except kmock.ReactionMismatchError:  # depleted or declined: never asked again, as in kmock
                reaction._disabled.set()
            except NotImplementedError:  # matched but has nothing to answer with
                continue
        # Nothing (not even a fallback) answers this path: what a real API server says to it.
        return errors.resource_not_found().as_response()

    async def _refusal(
        self, request: kmock.Request, candidates: Iterator[kmock.Reaction]
    ) -> tuple[aiohttp.web.StreamResponse | None, Iterator[kmock.Reaction]]:
        """The answer of a reaction that refuses this write with an error status, before it is stored;
        else None and the candidates still to answer it after the write (the ones looked at included)."""
        catchers: list[kmock.Reaction] = []
        for reaction in candidates:
            status = _declared_status(reaction.response)
            if status is None and reaction.response.payload is None:
                catchers.append(reaction)  # it records the request when _react runs it; the next decides
                continue
            if status is None or status < 400:
                return None, itertools.chain(catchers, [reaction], candidates)  # it answers, after the write
            try:
                return await reaction(request), candidates
            except kmock.ReactionMismatchError:  # depleted or declined: as in _react
                reaction._disabled.set()
        return None, iter(catchers)

    def _served(self, request: kmock.Request) -> ServedResource:
        assert request.resource is not None  # only resource requests get here
        served = self._catalog.lookup(request.resource)
        if served is None:
            raise errors.resource_not_found()
        wrong_scope = (served.namespaced is False and request.namespace is not None) or (
            served.namespaced and request.namespace is None and request.name is not None
        )
        if wrong_scope:
            raise errors.resource_not_found()
        return served

    # --- writes ---------------------------------------------------------------------------------

    def _write(self, request: kmock.Request, served: ServedResource) -> kmock.Response:
        dry_run = request.params.get("dryRun")
        if dry_run not in (None, "", "All"):
            raise errors.bad_request(f'dryRun: Unsupported value: "{dry_run}": supported values: "All"')
        body = None
        if request.action == kmock.action.CREATE or request.method in (kmock.method.PUT, kmock.method.PATCH):
            body = self._decoded_body(request, served)
        target = Target(
            served,
            request.namespace,
            request.name,
            request.subresource,
            field_validation=decoding.field_validation(request.params),
            duplicates=body.duplicates if body else (),
            dry_run=dry_run == "All",
        )
        if request.action == kmock.action.CREATE:
            if request.subresource is not None:
                raise errors.method_not_allowed()
            assert body is not None  # decoded above for every create
            created = self._lifecycle.create(target, body.data)
            response = kmock.Response(status=201, payload=_present(created, served))
        elif request.action == kmock.action.UPDATE:
            assert body is not None  # decoded above for every PUT and PATCH
            response = self._update(request, target, body.data)
        else:
            response = self._delete(request, target)
        warning = decoding.warning_header(target.warnings) if target.warnings else None
        response = attrs.evolve(response, headers={**_headers(), "Warning": warning})
        return response

    @staticmethod
    def _decoded_body(request: kmock.Request, served: ServedResource) -> decoding.Decoded:
        content_type = _content_type(request)
        if request.method == kmock.method.PATCH:
            accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([] if served.custom else [STRATEGIC_MERGE_PATCH])
            if content_type not in accepted:  # custom resources have no strategic merge patch
                raise errors.unsupported_media_type(content_type, accepted)
            if content_type != APPLY_PATCH:
                return decoding.decode_body("application/json", request.body)
        return decoding.decode_body(content_type, request.body)

    def _update(self, request: kmock.Request, target: Target, body: Any) -> kmock.Response:
        if request.method == kmock.method.PATCH and _content_type(request) == APPLY_PATCH:
            return self._server_side_apply(target, body)
        current = self._lifecycle.current(target)
        if request.method == kmock.method.PUT:
            candidate = body
            _refuse_unconditional_custom_update(target, current, candidate)
        else:
            candidate = self._patched(request, current, body)
        updated = self._lifecycle.update(target, current, candidate)
        return kmock.Response(status=200, payload=_present(updated, target.served))

    @staticmethod
    def _patched(request: kmock.Request, current: dict[str, Any], patch: Any) -> Any:
        content_type = _content_type(request)
        try:
            if content_type == JSON_PATCH:
                return json_patch(current, patch)
            if not isinstance(patch, Mapping):
                raise PatchError("a merge patch must be a JSON object")
            patch_fn = merge_patch if content_type == MERGE_PATCH else strategic_merge_patch
            return patch_fn(current, patch)
        except PatchError as error:
            raise errors.bad_request(str(error)) from None
        except PatchConflict as error:
            raise errors.unprocessable(str(error)) from None

    def _server_side_apply(self, target: Target, body: Any) -> kmock.Response:
        """Approximated as create-or-merge: field ownership is not tracked."""
        if not isinstance(body, Mapping):
            raise errors.bad_request("an apply patch must be an object")
        served = target.served
        assert target.name is not None  # updates always address one object
        if self._store.get(target.key(target.name)) is None and target.subresource is None:
            body = {**body, "metadata": {**(body.get("metadata") or {}), "name": target.name}}
            created = self._lifecycle.create(target, body)
            return kmock.Response(status=201, payload=_present(created, served))
        current = self._lifecycle.current(target)
        updated = self._lifecycle.update(target, current, merge_patch(current, body))
        return kmock.Response(status=200, payload=_present(updated, served))

    def _delete(self, request: kmock.Request, target: Target) -> kmock.Response:
        if target.subresource is not None:
            raise errors.method_not_allowed()
        if target.name is None:
            return self._delete_collection(request, target.served)
        served = target.served
        current = self._lifecycle.current(target)
        options = request.data if isinstance(request.data, Mapping) else {}
        self._check_delete_preconditions(served, current, options.get("preconditions") or {})
        if target.dry_run:
            return kmock.Response(status=200, payload=_success_status(served, current))
        policy = options.get("propagationPolicy") or request.params.get("propagationPolicy")
        deletion = self._lifecycle.delete(target.key(target.name), collect_dependents=policy != "Orphan",
                                          grace_period=_grace_period(request, options))
        assert deletion is not None  # it exists: just checked
        payload = _success_status(served, current) if deletion.gone else _present(deletion.obj, served)
        return kmock.Response(status=200, payload=payload)

    @staticmethod
    def _check_delete_preconditions(
        served: ServedResource, current: Mapping[str, Any], preconditions: Mapping[str, Any]
    ) -> None:
        meta = current["metadata"]
        for field in ("uid", "resourceVersion"):
            wanted = preconditions.get(field)
            if wanted and wanted != meta.get(field):
                label = "UID" if field == "uid" else "ResourceVersion"
                detail = f"Precondition failed: {label} in precondition: {wanted}, "
                detail += f"{label} in object meta: {meta.get(field)}"
                raise errors.conflict(served.group, served.plural, meta["name"], detail)

    def _delete_collection(self, request: kmock.Request, served: ServedResource) -> kmock.Response:
        options = request.data if isinstance(request.data, Mapping) else {}
        matches = self._matcher(request, served)
        deleted = []
        for key, obj in self._store.items(served.storage, request.namespace):
            if matches(obj):
                deletion = self._lifecycle.delete(key, grace_period=_grace_period(request, options))
                if deletion is not None:
                    deleted.append(_present(deletion.obj, served))
        return kmock.Response(status=200, payload=self._list_body(deleted, served, continue_token=None))

    async def _serve_create(self, request: kmock.Request) -> kmock.Response:
        return self._outcomes[request.id]

    async def _serve_update(self, request: kmock.Request) -> kmock.Response:
        return self._outcomes[request.id]

    async def _serve_delete(self, request: kmock.Request) -> kmock.Response:
        return self._outcomes[request.id]

    # --- reads ----------------------------------------------------------------------------------

    def _matcher(self, request: kmock.Request, served: ServedResource) -> Matcher:
        try:
            labels = selectors.parse_label_selector(request.params.get("labelSelector"))
            fields = selectors.parse_field_selector(request.params.get("fieldSelector"), served.supports_field_selector)
        except selectors.SelectorError as error:
            raise errors.bad_request(str(error)) from None
        namespace, name = request.namespace, request.name

        def matches(obj: Mapping[str, Any]) -> bool:
            meta = obj.get("metadata", {})
            return (
                (namespace is None or meta.get("namespace") == namespace)
                and (name is None or meta.get("name") == name)
                and labels.matches(meta.get("labels"))
                and fields.matches(obj)
            )

        return matches

    def _table_renderer(
        self, request: kmock.Request, served: ServedResource
    ) -> Callable[[list[dict[str, Any]]], dict[str, Any]] | None:
        version = tables.requested_table_version(_header(request, "Accept"))
        if version is None:
            return None
        include_object = request.params.get("includeObject", "Metadata")

        printer = printers.PRINTERS.get((served.group, served.kind)) if served.custom is None else None

        def render(objects: list[dict[str, Any]]) -> dict[str, Any]:
            resource_version = str(self._store.clock.current)
            if printer is not None:
                return tables.build_printed_table(objects, printer.columns, printer.cells, version=version,
                                                  include_object=include_object, resource_version=resource_version)
            return tables.build_table(
                objects,
                served.printer_columns,
                version=version,
                include_object=include_object,
                resource_version=resource_version,
            )

        return render

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Response:
        served = self._served(request)
        obj = _present(
            self._lifecycle.current(Target(served, request.namespace, request.name, request.subresource)),
            served,
        )
        table = self._table_renderer(request, served)
        return kmock.Response(status=200, payload=table([obj]) if table else obj)

    async def _serve_list(self, request: kmock.Request) -> kmock.Response:
        served = self._served(request)
        matches = self._matcher(request, served)
        objects = [
            _present(obj, served) for _, obj in self._store.items(served.storage, request.namespace) if matches(obj)
        ]
        page, continue_token = self._paginate(objects, request)
        table = self._table_renderer(request, served)
        if table is None:
            return kmock.Response(status=200, payload=self._list_body(page, served, continue_token))
        body = table(page)
        if continue_token:
            body["metadata"]["continue"] = continue_token
        return kmock.Response(status=200, payload=body)

    def _list_body(
        self, items: list[dict[str, Any]], served: ServedResource, continue_token: str | None
    ) -> dict[str, Any]:
        list_meta: dict[str, Any] = {"resourceVersion": str(self._store.clock.current)}
        if continue_token:
            list_meta["continue"] = continue_token
        return {
            "apiVersion": served.api_version,
            "kind": served.list_kind,
            "metadata": list_meta,
            "items": items,
        }

    @staticmethod
    def _paginate(objects: list[dict[str, Any]], request: kmock.Request) -> tuple[list[dict[str, Any]], str | None]:
        """``limit``/``continue`` chunking; the token is an offset (no snapshot isolation)."""
        try:
            offset = (
                int(base64.urlsafe_b64decode(request.params["continue"]).decode())
                if request.params.get("continue")
                else 0
            )
            limit = int(request.params.get("limit") or 0)
        except ValueError:
            raise errors.bad_request("invalid continue token or limit") from None
        if limit <= 0:
            return objects[offset:], None
        page = objects[offset : offset + limit]
        more = offset + limit < len(objects)
        token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
        return page, token

    # Returns a Response (not kmock's bare stream) to label the stream as JSON: kubectl needs that.
    async def _serve_watch(self, request: kmock.Request) -> kmock.Response:  # type: ignore[override]
        served = self._served(request)
        matches = self._matcher(request, served)
        since = self._watch_start(request)
        timeout = self._watch_timeout(request)
        table = self._table_renderer(request, served)

        def render(obj: Mapping[str, Any]) -> dict[str, Any]:
            presented = _present(obj, served)
            return table([presented]) if table else presented

        initial: list[dict[str, Any]] = []
        if since is None:  # no starting point: begin with the current state, as synthetic ADDED events
            initial = [obj for _, obj in self._store.items(served.storage, request.namespace) if matches(obj)]
            since = self._store.clock.current
        log = self._store.events(served.storage)
        stream = self._watch_stream(log, since, initial, matches, timeout, render)
        return kmock.Response(status=200, headers=_headers(content_type="application/json"), payload=stream)

    @staticmethod
    def _watch_start(request: kmock.Request) -> int | None:
        value = request.params.get("resourceVersion", "")
        if value in ("", "0"):
            return None
        if not value.isdigit():
            raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": must be a non-negative integer')
        return int(value)

    @staticmethod
    def _watch_timeout(request: kmock.Request) -> float | None:
        value = request.params.get("timeoutSeconds")
        try:
            return float(value) if value else None
        except ValueError:
            raise errors.bad_request(f'timeoutSeconds: Invalid value: "{value}"') from None

    @staticmethod
    async def _watch_stream(
        log: EventLog,
        since: int,
        initial: list[dict[str, Any]],
        matches: Matcher,
        timeout: float | None,
        render: Renderer,
    ) -> AsyncIterator[Any]:
        yield b""  # sends the headers at once, so that the client knows the watch has started
        for obj in initial:
            yield {"type": watching.ADDED, "object": render(obj)}
        try:
            async for change_type, obj in watching.follow(log, since=since, matches=matches, timeout=timeout):
                yield {"type": change_type, "object": render(obj)}
        except errors.ApiError as error:  # e.g. 410 Expired: the client has to list again
            yield {"type": "ERROR", "object": error.as_status()}

    # --- discovery & non-resource endpoints -----------------------------------------------------

    async def _serve_apis(self, request: kmock.Request) -> kmock.Response:
        groups = discovery.group_versions(self._get_resources())
        return kmock.Response(status=200, payload=discovery.api_group_list(groups))

    async def _serve_group(self, request: kmock.Request) -> kmock.Response:
        assert request.resource is not None  # routed here by the /apis/{group} path
        versions = discovery.group_versions(self._get_resources()).get(request.resource.group or "")
        if not versions:
            return kmock.Response(status=404, headers=_headers(), payload=errors.resource_not_found().as_status())
        return kmock.Response(status=200, payload=discovery.api_group(request.resource.group or "", versions))

    async def _serve_version(self, request: kmock.Request) -> kmock.Response:
        assert request.resource is not None  # routed here by the /api/{version} & /apis/{group}/{version} paths
        group, version = request.resource.group or "", request.resource.version or ""
        served = [
            (resource, self._discovery_info(resource))
            for resource in self._get_resources()
            if resource.group == group and resource.version == version and resource.plural
        ]
        if not served and group:
            return kmock.Response(status=404, headers=_headers(), payload=errors.resource_not_found().as_status())
        return kmock.Response(status=200, payload=discovery.api_resource_list(group, version, served))

    def _discovery_info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        # Look before indexing: kmock's resources array creates entries on a mere lookup.
        return self._resources[resource] if resource in self._resources else kmock.ResourceInfo()

    async def _serve_server_version(self, request: kmock.Request) -> kmock.Response:
        return kmock.Response(status=200, payload=dict(_SERVER_VERSION))

    def _openapi_documents(self) -> dict[str, dict[str, Any]]:
        """Every group-version's v3 document, keyed like the v3 root (``api/v1``, ``apis/g/v``)."""
        served_now = self._catalog.all_served()
        key = (self._catalog.revision, frozenset(served.resource for served in served_now))
        if key not in self._openapi_cache:
            by_group_version: dict[tuple[str, str], list[ServedResource]] = {}
            for served in served_now:
                by_group_version.setdefault((served.group, served.resource.version or ""), []).append(served)
            documents = {
                openapi.gv_path(group, version): openapi.group_version_document(group, version, resources)
                for (group, version), resources in by_group_version.items()
            }
            self._openapi_cache.clear()  # only the current documents are ever asked for
            self._openapi_cache[key] = {"v3": documents, "root": openapi.root_document(documents)}
        return dict(self._openapi_cache[key]["v3"])

    def _openapi_cached(self, name: str, build: Callable[[dict[str, dict[str, Any]]], Any]) -> Any:
        """The root document or the v2 document of the current v3 documents, built once."""
        self._openapi_documents()
        entry = next(iter(self._openapi_cache.values()))
        if name not in entry:
            entry[name] = build(entry["v3"])
        return entry[name]

    async def _serve_openapi_v3(self, request: kmock.Request) -> kmock.Response:
        documents = self._openapi_documents()
        wanted = request.url.path.removeprefix(openapi.V3_PREFIX.rstrip("/")).strip("/")
        if not wanted:
            root = self._openapi_cached("root", openapi.root_document)
            return kmock.Response(status=200, headers=_headers(), payload=root)
        if wanted not in documents:
            return kmock.Response(status=404, headers=_headers(), payload=errors.resource_not_found().as_status())
        headers = _headers(cache_control="public, immutable", content_type="application/json")
        return kmock.Response(status=200, headers=headers, payload=documents[wanted])

    async def _serve_openapi_v2(self, request: kmock.Request) -> kmock.Response:
        document = self._openapi_cached("v2", lambda documents: openapi.swagger_document(documents.values()))
        if swagger_proto.MEDIA_TYPE in _header(request, "Accept"):
            body = self._openapi_cached("v2-protobuf", lambda _: swagger_proto.encode_document(document))
            return kmock.Response(status=200, headers=_headers(content_type=swagger_proto.RESPONSE_MEDIA_TYPE),
                                  payload=body)
        return kmock.Response(status=200, headers=_headers(), payload=document)


def _declared_status(response: kmock.Response) -> int | None:
    """The status a reaction answers with, when it says so without running (`<< 429`, `<< Response(...)`)."""
    if response.status is not None:
        return response.status
    return _declared_status(response.payload) if isinstance(response.payload, kmock.Response) else None


def _refuse_unconditional_custom_update(target: Target, current: dict[str, Any], candidate: dict[str, Any]) -> None:
    """Custom resources allow no blind replace (built-ins like ConfigMaps do): the client must
    say which resourceVersion it replaces, or the API server answers 422."""
    if target.served.custom is None or (candidate.get("metadata") or {}).get("resourceVersion"):
        return
    name = current["metadata"]["name"]
    problem = errors.FieldError.invalid("metadata.resourceVersion", 0, "must be specified for an update")
    raise errors.invalid(target.served.group, target.served.kind, name, [problem])
