"""The one place that configures the Kubernetes client.

Everything in the project talks to Kubernetes through an `ApiClient` made here, so that:
- every request carries connect/read timeouts (`REQUEST_TIMEOUT`) unless the caller set its own;
- every request is counted per Kubernetes verb, both in the Prometheus counter
  `devops_operator_kube_requests_total{verb}` and on the client itself, so benchmarks and
  tests can state exact request counts instead of timing guesses. A request is one `call_api`
  (what the caller asked for); urllib3's transport-level reconnects are not counted apart.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from prometheus_client import Counter

# (connect, read) seconds: long enough for a loaded API server, short enough that a hung
# connection cannot stall a kopf worker thread forever.
REQUEST_TIMEOUT: tuple[float, float] = (5.0, 30.0)

KUBE_REQUESTS = Counter(
    "devops_operator_kube_requests_total",
    "Requests made to the Kubernetes API through the operator's client, by Kubernetes verb.",
    ["verb"],
)

_COLLECTION_PREFIXES = ("api", "apis")
_NAMESPACE_SUBRESOURCES = ("status", "finalize")  # /namespaces/<ns>/status is an object, not a list


def kube_verb(method: str, url: str) -> str:
    """The Kubernetes verb of a request (get/list/watch/create/update/patch/delete/deletecollection).

    Kubernetes distinguishes verbs that HTTP does not: a GET is `get` on an object, `list`
    on a collection and `watch` with `watch=true`; a DELETE on a collection is `deletecollection`.
    """
    method = method.upper()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    collection = _is_collection(parts.path)
    if method == "DELETE":
        return "deletecollection" if collection else "delete"
    if method == "GET":
        if query.get("watch", [""])[0].lower() in ("true", "1"):
            return "watch"
        return "list" if collection else "get"
    return method.lower()


def _is_collection(path: str) -> bool:
    """Whether an API path names a collection rather than one object (or its subresource)."""
    segments = [s for s in path.split("/") if s]
    # Skip any prefix before /api or /apis (a proxied host path), then the group/version.
    for index, segment in enumerate(segments):
        if segment in _COLLECTION_PREFIXES:
            rest = segments[index + (2 if segment == "api" else 3) :]
            break
    else:
        return False
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        rest = rest[2:]  # namespaced: drop `namespaces/<ns>`, then the same shape as cluster-scoped
    # `<resource>` is a collection; `<resource>/<name>[/<subresource>]` is an object.
    return len(rest) == 1


class CountingApiClient(kubernetes.client.ApiClient):
    """An `ApiClient` that applies default timeouts and counts every request it makes."""

    def __init__(self, configuration: kubernetes.client.Configuration | None = None) -> None:
        super().__init__(configuration)
        self._counts_lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        verb = kube_verb(method, url)
        if _request_timeout is None:
            # Watches are long polls: a read timeout would cut them, so they only bound the connect.
            _request_timeout = (REQUEST_TIMEOUT[0], None) if verb == "watch" else REQUEST_TIMEOUT
        with self._counts_lock:
            self._counts[verb] += 1
        KUBE_REQUESTS.labels(verb=verb).inc()
        return super().call_api(
            method,
            url,
            header_params=header_params,
            body=body,
            post_params=post_params,
            _request_timeout=_request_timeout,
        )

    def request_counts(self) -> dict[str, int]:
        """Requests this client made so far, by verb (a snapshot)."""
        with self._counts_lock:
            return dict(self._counts)

    def requests_made(self) -> int:
        """How many requests this client made so far, all verbs."""
        with self._counts_lock:
            return sum(self._counts.values())


def request_count(verb: str | None = None) -> int:
    """Process-wide requests counted by `KUBE_REQUESTS` (one verb, or all): take deltas around work."""
    total = 0.0
    for metric in KUBE_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and (verb is None or sample.labels.get("verb") == verb):
                total += sample.value
    return int(total)


_lock = threading.Lock()
_configuration: kubernetes.client.Configuration | None = None
_client: CountingApiClient | None = None


def configure(
    host: str | None = None,
    *,
    token: str | None = None,
    ca_file: str | None = None,
    verify_ssl: bool = True,
) -> None:
    """Choose where the client points: an explicit host, else in-cluster config, else kubeconfig.

    Drops the cached client so the next `api_client()` points at the new place. The old client
    is not closed: callers may still hold it, and it keeps working against its own host.
    """
    global _configuration, _client
    configuration = _explicit(host, token, ca_file, verify_ssl) if host else _discovered()
    with _lock:
        _configuration, _client = configuration, None


def _explicit(host: str, token: str | None, ca_file: str | None, verify_ssl: bool) -> kubernetes.client.Configuration:
    configuration = kubernetes.client.Configuration(host=host.rstrip("/"))
    if token:
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    configuration.ssl_ca_cert = ca_file
    configuration.verify_ssl = verify_ssl
    return configuration


def _discovered() -> kubernetes.client.Configuration:
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    return configuration


def configuration() -> kubernetes.client.Configuration:
    """The configuration in use (discovered on first use if `configure` was never called)."""
    global _configuration
    with _lock:
        if _configuration is None:
            _configuration = _discovered()
        return _configuration


def api_client() -> CountingApiClient:
    """The shared, cached client (thread-safe: urllib3's pool serves concurrent kopf workers)."""
    global _client
    current = configuration()
    with _lock:
        if _client is None or _client.configuration is not current:
            _client = CountingApiClient(current)
        return _client


def new_api_client(host: str | None = None) -> CountingApiClient:
    """A separate client with its own connection pool (for another host, or isolated counting)."""
    if host is None:
        return CountingApiClient(configuration())
    return CountingApiClient(_explicit(host, None, None, True))


def call_json(
    api: kubernetes.client.ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    timeout: Any = REQUEST_TIMEOUT,
    content_type: str = "application/json",
) -> Any:
    """One request with a plain-dict JSON body and a plain-dict result.

    Used where the generated models get in the way: they re-validate whole objects (slow for a
    large ConfigMap) and re-serialise timestamps in forms a real API server refuses
    (a MicroTime without its six fractional digits). Raises `ApiException` on non-2xx.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    request = api.param_serialize(
        method,
        path,
        query_params=list(query.items()) if query else None,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=timeout)
    data = response.read()
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
    return json.loads(data) if data else None
