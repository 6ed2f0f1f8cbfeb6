"""Reading Secrets: decoded values, or None when the Secret does not exist."""

from __future__ import annotations

import base64

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import REQUEST_TIMEOUT


def read_secret(api: ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    """The Secret's data decoded to text; None when it is missing (other API errors propagate)."""
    try:
        secret = CoreV1Api(api).read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    # A Secret may also hold binary values (certificates) under other keys: never fail on those.
    decoded = {
        key: base64.b64decode(value).decode("utf-8", errors="replace") for key, value in (secret.data or {}).items()
    }
    decoded.update(secret.string_data or {})
    return decoded
