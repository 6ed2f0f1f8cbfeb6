"""Terraform state backends as the runner configures them, and the Kubernetes backend's object names.

The Kubernetes backend is Terraform's own (`backend "kubernetes"`): state in a Secret named
`tfstate-<workspace>-<secret_suffix>` (gzip'd JSON under the key `tfstate`, labels `tfstate=true`,
`tfstateSecretSuffix`, `tfstateWorkspace`), its lock a Lease `lock-tfstate-<workspace>-<secret_suffix>`
whose holderIdentity is the lock id and whose `app.terraform.io/lock-info` annotation holds the lock
info. The operator reads that Lease to report who holds the lock (status.lock); the Lease is the lock of
record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the stand-in imports this module on every start: keep pydantic models out of it
    from devops_operator.api.devopsproject import TerraformBackend

DEFAULT_WORKSPACE = "default"
STATE_KEY = "tfstate"
LOCK_INFO_ANNOTATION = "app.terraform.io/lock-info"
BACKEND_OVERRIDE_FILE = "devops_backend_override.tf.json"


def state_secret_name(suffix: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    return f"tfstate-{workspace}-{suffix}"


def lock_lease_name(suffix: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    return f"lock-tfstate-{workspace}-{suffix}"


def state_labels(suffix: str, workspace: str = DEFAULT_WORKSPACE) -> dict[str, str]:
    return {"tfstate": "true", "tfstateSecretSuffix": suffix, "tfstateWorkspace": workspace,
            "app.kubernetes.io/managed-by": "terraform"}


@dataclass(frozen=True)
class BackendSettings:
    """Where one deployment's state lives, resolved from the deployment's override or the project's."""

    type: str
    namespace: str | None = None  # kubernetes
    secret_suffix: str | None = None  # kubernetes
    bucket: str | None = None  # s3
    key: str | None = None  # s3
    region: str | None = None  # s3
    dynamodb_table: str | None = None  # s3
    encrypt: bool = True

    def describe(self) -> Mapping[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def override(self) -> dict[str, Any]:
        """The backend override file the runner writes next to the module (`*_override.tf.json`)."""
        if self.type == "kubernetes":
            config: dict[str, Any] = {"secret_suffix": self.secret_suffix, "namespace": self.namespace}
        else:
            config = {"bucket": self.bucket, "key": self.key, "region": self.region, "encrypt": self.encrypt}
            if self.dynamodb_table:
                config["dynamodb_table"] = self.dynamodb_table
            else:
                config["use_lockfile"] = True  # S3-native locking (Terraform >= 1.10, OpenTofu >= 1.8)
        return {"terraform": {"backend": {self.type: config}}}

    def override_json(self) -> str:
        return json.dumps(self.override(), indent=2, sort_keys=True)


def resolve_backend(backend: TerraformBackend, *, deployment: str, deployment_namespace: str,
                    project_namespace: str, region: str) -> BackendSettings:
    """The backend of one deployment: the suffix is per namespace and deployment, so none share a state."""
    if backend.type == "s3" and backend.s3 is not None:
        s3 = backend.s3
        return BackendSettings(type="s3", bucket=s3.bucket, key=f"{s3.key_prefix}/{deployment_namespace}/{deployment}"
                               "/terraform.tfstate", region=s3.region or region, dynamodb_table=s3.dynamodb_table,
                               encrypt=s3.encrypt)
    kube = backend.kubernetes
    # In the deployment's own namespace the name alone is unique; in a shared state namespace two
    # deployments of one name (from two namespaces) would share a state and a lock without the namespace.
    name = deployment if not kube.namespace or kube.namespace == deployment_namespace else (
        f"{deployment_namespace}-{deployment}")
    suffix = f"{kube.secret_suffix_prefix}-{name}" if kube.secret_suffix_prefix else name
    return BackendSettings(type="kubernetes", namespace=kube.namespace or deployment_namespace,
                           secret_suffix=suffix[:200])


@dataclass(frozen=True)
class LockInfo:
    """A held Terraform lock as its Lease records it."""

    id: str
    operation: str | None
    who: str | None
    created: str | None


def lock_from_lease(lease: Mapping[str, Any] | None) -> LockInfo | None:
    """The lock a Kubernetes-backend Lease holds, or None when it is free (pure)."""
    if not lease:
        return None
    holder = (lease.get("spec") or {}).get("holderIdentity")
    if not holder:
        return None
    raw = ((lease.get("metadata") or {}).get("annotations") or {}).get(LOCK_INFO_ANNOTATION) or "{}"
    try:
        info = json.loads(raw)
    except ValueError:
        info = {}
    return LockInfo(id=str(holder), operation=info.get("Operation"), who=info.get("Who"), created=info.get("Created"))


def released_lease(lease: Mapping[str, Any]) -> dict[str, Any]:
    """The Lease with its lock released (as `terraform force-unlock` leaves it), to PUT at its resourceVersion."""
    metadata = dict(lease["metadata"])
    metadata["annotations"] = {k: v for k, v in (metadata.get("annotations") or {}).items()
                               if k != LOCK_INFO_ANNOTATION}
    return {**lease, "metadata": metadata, "spec": {**(lease.get("spec") or {}), "holderIdentity": None}}
