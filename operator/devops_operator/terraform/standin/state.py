"""Where the stand-in keeps state: Terraform's Kubernetes backend format (Secret + Lease lock) or a local file.

The same objects real Terraform's `backend "kubernetes"` writes, so a deployment can move between the
stand-in and a real engine without losing its state, and the operator reads one lock format.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devops_operator.terraform.backends import (
    DEFAULT_WORKSPACE,
    LOCK_INFO_ANNOTATION,
    STATE_KEY,
    lock_from_lease,
    lock_lease_name,
    released_lease,
    state_labels,
    state_secret_name,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class LockError(Exception):
    """The state is locked by someone else (Terraform's 'Error acquiring the state lock')."""


class StateWriteError(Exception):
    """The state could not be saved (the caller writes errored.tfstate, as Terraform does)."""


class StateStore(Protocol):
    def read(self) -> dict[str, Any] | None: ...
    def write(self, state: Mapping[str, Any]) -> None: ...
    def lock(self, operation: str) -> str: ...
    def unlock(self, lock_id: str) -> None: ...


def lock_info(operation: str, lock_id: str) -> dict[str, Any]:
    host = os.environ.get("HOSTNAME") or socket.gethostname()  # a pod's hostname is its name
    return {"ID": lock_id, "Operation": operation, "Info": "", "Who": f"runner@{host}",
            "Version": "stand-in", "Created": datetime.now(UTC).isoformat(), "Path": ""}


class LocalState:
    """terraform.tfstate in the working directory (no backend configured); a .lock.info file as the lock."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "terraform.tfstate"
        self.lock_path = directory / ".terraform.tfstate.lock.info"

    def read(self) -> dict[str, Any] | None:
        return json.loads(self.path.read_text()) if self.path.exists() else None

    def write(self, state: Mapping[str, Any]) -> None:
        self.path.write_text(json.dumps(state, indent=2))

    def lock(self, operation: str) -> str:
        if self.lock_path.exists():
            raise LockError(self.lock_path.read_text())
        lock_id = str(uuid.uuid4())
        self.lock_path.write_text(json.dumps(lock_info(operation, lock_id)))
        return lock_id

    def unlock(self, lock_id: str) -> None:
        self.lock_path.unlink(missing_ok=True)


class KubernetesState:
    """Terraform's Kubernetes backend: gzip'd state in a Secret, the lock a Lease."""

    def __init__(self, api: ApiClient, namespace: str, suffix: str, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.api = api
        self.namespace = namespace
        self.suffix = suffix
        self.workspace = workspace
        self.secret = state_secret_name(suffix, workspace)
        self.lease = lock_lease_name(suffix, workspace)

    def _secret_path(self, name: str | None = None) -> str:
        base = f"/api/v1/namespaces/{self.namespace}/secrets"
        return f"{base}/{name}" if name else base

    def _lease_path(self, name: str | None = None) -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        return f"{base}/{name}" if name else base

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        from devops_operator.kube.client import REQUEST_TIMEOUT, call_json  # the Kubernetes client, when used

        return call_json(self.api, method, path, body=body, timeout=REQUEST_TIMEOUT)

    def _get(self, path: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found: dict[str, Any] = self._call("GET", path)
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def read(self) -> dict[str, Any] | None:
        secret = self._get(self._secret_path(self.secret))
        data = ((secret or {}).get("data") or {}).get(STATE_KEY)
        if not data:
            return None
        state: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(data)))
        return state

    def write(self, state: Mapping[str, Any]) -> None:
        encoded = base64.b64encode(gzip.compress(json.dumps(state).encode())).decode()
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": self.secret, "namespace": self.namespace,
                         "labels": state_labels(self.suffix, self.workspace), "annotations": {"encoding": "gzip"}},
            "data": {STATE_KEY: encoded},
        }
        try:
            existing = self._get(self._secret_path(self.secret))
            if existing is None:
                self._call("POST", self._secret_path(), body)
            else:
                body["metadata"]["resourceVersion"] = existing["metadata"].get("resourceVersion")
                self._call("PUT", self._secret_path(self.secret), body)
        except Exception as exc:  # an API refusal or a broken connection: Terraform writes errored.tfstate
            raise StateWriteError(f"failed to persist state to Secret {self.namespace}/{self.secret}: {exc}") from exc

    def lock(self, operation: str) -> str:
        lock_id = str(uuid.uuid4())
        info = lock_info(operation, lock_id)
        lease = self._get(self._lease_path(self.lease))
        held = lock_from_lease(lease)
        if held is not None:
            raise LockError(f"ID: {held.id}\nOperation: {held.operation}\nWho: {held.who}\nCreated: {held.created}")
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.lease, "namespace": self.namespace,
                         "labels": state_labels(self.suffix, self.workspace),
                         "annotations": {LOCK_INFO_ANNOTATION: json.dumps(info)}},
            "spec": {"holderIdentity": lock_id},
        }
        from kubernetes.client.exceptions import ApiException

        try:
            if lease is None:
                self._call("POST", self._lease_path(), body)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"].get("resourceVersion")
                self._call("PUT", self._lease_path(self.lease), body)
        except ApiException as exc:
            if exc.status == 409:  # someone else took it between our read and write
                raise LockError(f"the lock Lease {self.lease} was taken concurrently") from exc
            raise
        return lock_id

    def unlock(self, lock_id: str) -> None:
        lease = self._get(self._lease_path(self.lease))
        held = lock_from_lease(lease)
        if lease is None or held is None or held.id != lock_id:
            return
        self._call("PUT", self._lease_path(self.lease), released_lease(lease))
