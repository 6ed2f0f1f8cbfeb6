"""Terraform state backends as the runner configures them, and the Kubernetes backend's object names.

The Kubernetes backend is Terraform's own (`backend "kubernetes"`): state in a Secret named
`tfstate-<workspace>-<secret_suffix>` (gzip'd JSON under the key `tfstate`, labels `tfstate=true`,
`tfstateSecretSuffix`, `tfstateWorkspace`), its lock a Lease `lock-tfstate-<workspace>-<secret_suffix>`
whose holderIdentity is the lock id and whose `app.terraform.io/lock-info` annotation holds the lock
info. The operator reads that Lease to report who holds the lock (status.lock); the Lease is the lock of
record.

State names must never collide (issue 14, 13d). In the deployment's own namespace the suffix is
`<prefix>-<name>`, unique there. In a shared state namespace it is `<prefix>.<namespace>.<name>`:
a namespace is a DNS label (no dots), so the first two dots split it unambiguously, where the old
`<prefix>-<namespace>-<name>` gave `team`/`a-web` and `team-a`/`web` one state and one lock. Terraform
labels its objects with the suffix, so it is bounded by a label value's 63 characters (tighter than the
253 of the Secret and Lease names): a longer one, or one whose prefix has a dot, keeps a readable head
and ends `.h<16 hex digits of sha256 of the full name>`, a shape no exact suffix is allowed to have, so
the two kinds never meet. The old name (`legacy_state_suffix`) is kept only for a deployment that
already has state under it: deploy/inputs.py decides that.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the stand-in imports this module on every start: keep pydantic models out of it
    from devops_operator.api.devopsproject import TerraformBackend

DEFAULT_WORKSPACE = "default"
STATE_KEY = "tfstate"
LOCK_INFO_ANNOTATION = "app.terraform.io/lock-info"
BACKEND_OVERRIDE_FILE = "devops_backend_override.tf.json"


# Terraform's Kubernetes backend labels the state Secret and the lock Lease with the suffix
# (tfstateSecretSuffix): a label value holds at most 63 characters.
MAX_SECRET_SUFFIX = 63
_HASH_MARK = ".h"
_HASH_DIGITS = 16  # 64 bits: finding a name of one's own that hashes like another's is out of reach
_HASHED = re.compile(rf"\.h[0-9a-f]{{{_HASH_DIGITS}}}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def bounded_suffix(exact: str, *, ambiguous: bool = False) -> str:
    """`exact` when it fits and cannot be mistaken for a hashed suffix; else a head and a hash of all of it (pure).

    Every hashed suffix ends `.h<hex>` and no exact one may, so an exact and a hashed suffix never collide,
    and two hashed ones only if sha256 does. `ambiguous`: the exact form does not decode uniquely (a
    prefix with a dot), so the hash decides.
    """
    if len(exact) <= MAX_SECRET_SUFFIX and not ambiguous and not _HASHED.search(exact):
        return exact
    digest = hashlib.sha256(exact.encode()).hexdigest()[:_HASH_DIGITS]
    # A name's dot-separated parts must start and end alphanumeric: no '-' or '.' before the mark.
    head = exact[: MAX_SECRET_SUFFIX - len(_HASH_MARK) - _HASH_DIGITS].rstrip("-.")
    return f"{head}{_HASH_MARK}{digest}" if head else f"h{digest}"


def _shared(state_namespace: str | None, deployment_namespace: str) -> bool:
    return bool(state_namespace) and state_namespace != deployment_namespace


def state_suffix(prefix: str, *, deployment: str, deployment_namespace: str, state_namespace: str | None) -> str:
    """The state's secret_suffix: `<prefix>-<name>` in the deployment's namespace, `<prefix>.<ns>.<name>` in a
    shared one, bounded (pure)."""
    if not _shared(state_namespace, deployment_namespace):
        return bounded_suffix(f"{prefix}-{deployment}" if prefix else deployment)
    exact = f"{prefix}.{deployment_namespace}.{deployment}" if prefix else f"{deployment_namespace}.{deployment}"
    return bounded_suffix(exact, ambiguous="." in prefix)


def legacy_state_suffix(prefix: str, *, deployment: str, deployment_namespace: str,
                        state_namespace: str | None) -> str:
    """The suffix operators before the fix of issue 14 (13d) used: kept only where state already lives under it."""
    name = deployment if not _shared(state_namespace, deployment_namespace) else f"{deployment_namespace}-{deployment}"
    suffix = f"{prefix}-{name}" if prefix else name
    return suffix[:200]


def legacy_sharers(*, deployment: str, deployment_namespace: str, state_namespace: str) -> list[tuple[str, str]]:
    """Other deployments (namespace, name) the legacy naming gave the same state, with the same prefix (pure).

    `<ns>-<name>` splits at any '-' into another namespace and name; in the state namespace itself, a
    deployment named `<ns>-<name>` had it too.
    """
    joined = deployment if not _shared(state_namespace, deployment_namespace) else (
        f"{deployment_namespace}-{deployment}")
    found = []
    if _shared(state_namespace, deployment_namespace):
        found.append((state_namespace, joined))
    for index, char in enumerate(joined):
        other_namespace, other_name = joined[:index], joined[index + 1:]
        if (char == "-" and other_name and _DNS_LABEL.match(other_namespace) and other_namespace != state_namespace
                and (other_namespace, other_name) != (deployment_namespace, deployment)):
            found.append((other_namespace, other_name))
    return found


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
    # kubernetes: the suffix operators before issue 14 (13d) used, where it differs from secret_suffix
    legacy_suffix: str | None = None

    def describe(self) -> Mapping[str, Any]:
        """What the inputs digest binds: where the state is (the legacy name only once chosen as secret_suffix)."""
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "legacy_suffix"}

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
    # In the deployment's own namespace the name alone is unique; in a shared state namespace the
    # namespace is part of it, encoded so no two (namespace, name) pairs meet (the module's docstring).
    prefix = kube.secret_suffix_prefix
    suffix = state_suffix(prefix, deployment=deployment, deployment_namespace=deployment_namespace,
                          state_namespace=kube.namespace)
    legacy = legacy_state_suffix(prefix, deployment=deployment, deployment_namespace=deployment_namespace,
                                 state_namespace=kube.namespace)
    return BackendSettings(type="kubernetes", namespace=kube.namespace or deployment_namespace, secret_suffix=suffix,
                           legacy_suffix=legacy if legacy != suffix else None)


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
