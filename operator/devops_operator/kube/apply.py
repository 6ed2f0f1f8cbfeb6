"""Apply manifests (any kind) the way `kubectl apply` does for our purposes: create, else merge-patch.

The resource path of a kind comes from API discovery, so custom resources work as soon as
their CRD is registered; used by the sandbox to apply `examples/` and by the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import call_json


@dataclass(frozen=True)
class ResourcePath:
    api_version: str
    plural: str
    namespaced: bool

    def collection(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


class Discovery:
    """Kind -> REST path, looked up once per group-version and cached."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self._cache: dict[str, dict[str, ResourcePath]] = {}

    def resolve(self, api_version: str, kind: str) -> ResourcePath:
        if api_version not in self._cache:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            listing = _request(self.api, "GET", path)
            self._cache[api_version] = {
                entry["kind"]: ResourcePath(api_version, entry["name"], bool(entry.get("namespaced")))
                for entry in listing.get("resources", [])
                if "/" not in entry["name"]
            }
        try:
            return self._cache[api_version][kind]
        except KeyError:
            raise LookupError(
                f"the API server does not serve kind {kind!r} in {api_version!r}: is its CRD installed?"
            ) from None


def load_manifests(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every non-empty YAML document of the files (directories expand to *.yaml, sorted)."""
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if doc:
                    yield doc


def apply(api: ApiClient, manifest: dict[str, Any], *, namespace: str = "default",
          discovery: Discovery | None = None) -> dict[str, Any]:
    """Create the object, or merge-patch it when it already exists; returns the stored object."""
    discovery = discovery or Discovery(api)
    where = discovery.resolve(manifest["apiVersion"], manifest["kind"])
    body = dict(manifest)
    metadata = dict(body.get("metadata") or {})
    if where.namespaced:
        metadata["namespace"] = metadata.get("namespace") or namespace
    body["metadata"] = metadata
    collection = where.collection(metadata.get("namespace"))
    try:
        return _request(api, "POST", collection, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return _request(api, "PATCH", f"{collection}/{metadata['name']}", body,
                    content_type="application/merge-patch+json")


def _request(api: ApiClient, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> dict[str, Any]:
    result = call_json(api, method, path, body=body, content_type=content_type)
    return result if isinstance(result, dict) else {}
