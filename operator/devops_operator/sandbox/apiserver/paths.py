"""Parse Kubernetes API URLs and HTTP requests into kmock requests with the right resource parts.

kmock's own parser cannot address namespaces themselves (``/api/v1/namespaces`` crashes it and
``/api/v1/namespaces/x`` loses the name) and does not recognise PUT or collection DELETE, so the
emulator parses requests here and hands kmock a fully populated :class:`kmock.Request`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiohttp.web
import kmock

from devops_operator.sandbox.apiserver import errors

# Subresources that a namespace object has, as opposed to namespaced resources named so.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclasses.dataclass(frozen=True)
class ApiPath:
    """The Kubernetes parts of a URL; ``plural is None`` means a discovery endpoint."""

    group: str
    version: str | None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_api_path(path: str) -> ApiPath | None:
    """Split ``/api/v1/...`` or ``/apis/group/version/...``; ``None`` for non-API URLs."""
    parts = [part for part in path.strip("/").split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    elif len(parts) == 2 and parts[0] == "apis":
        return ApiPath(group=parts[1], version=None)
    else:
        return None
    return _parse_resource_parts(group, version, rest)


def _parse_resource_parts(group: str, version: str, rest: list[str]) -> ApiPath:
    if not rest:
        return ApiPath(group=group, version=version)
    is_namespace_object = rest[0] == "namespaces" and (
        len(rest) <= 2 or (len(rest) == 3 and group == "" and rest[2] in _NAMESPACE_SUBRESOURCES)
    )
    if is_namespace_object:
        name = rest[1] if len(rest) >= 2 else None
        subresource = rest[2] if len(rest) == 3 else None
        return ApiPath(group, version, "namespaces", None, name, subresource)
    namespace = None
    if rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    subresource = "/".join(rest[2:]) or None
    return ApiPath(group, version, plural, namespace, name, subresource)


def guess_action(api_path: ApiPath | None, method: str, query: dict[str, str]) -> kmock.action | None:
    """The Kubernetes verb of a request, including PUT (update) and collection DELETE."""
    if api_path is None or api_path.plural is None:
        return None
    method = method.upper()
    if method == "GET" and query.get("watch") in ("true", "1"):
        return kmock.action.WATCH
    if api_path.name is None:
        by_method = {"GET": kmock.action.LIST, "POST": kmock.action.CREATE, "DELETE": kmock.action.DELETE}
    else:
        by_method = {
            "GET": kmock.action.FETCH,
            "PUT": kmock.action.UPDATE,
            "PATCH": kmock.action.UPDATE,
            "DELETE": kmock.action.DELETE,
        }
    return by_method.get(method)


def _decode_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:  # not JSON (e.g. YAML of server-side apply): the handlers read .text
        return None


async def parse_request(raw_request: aiohttp.web.BaseRequest, *, request_id: int) -> kmock.Request:
    """Build a kmock request (with the Kubernetes parts) from an incoming HTTP request."""
    try:
        body = await raw_request.read()
    except aiohttp.web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit
        raise errors.request_entity_too_large(raw_request.client_max_size) from None
    api_path = parse_api_path(raw_request.path)
    query = dict(raw_request.query)
    resource = None
    if api_path is not None:
        resource = kmock.resource(group=api_path.group, version=api_path.version, plural=api_path.plural)
    return kmock.Request(
        id=request_id,
        raw_request=raw_request,
        url=raw_request.url,
        method=raw_request.method,
        params=query,
        headers=dict(raw_request.headers),
        cookies=dict(raw_request.cookies),
        body=body,
        text=body.decode("utf-8", errors="replace"),
        data=_decode_json(body),
        action=guess_action(api_path, raw_request.method, query),
        resource=resource,
        namespace=api_path.namespace if api_path else None,
        name=api_path.name if api_path else None,
        subresource=api_path.subresource if api_path else None,
    )
