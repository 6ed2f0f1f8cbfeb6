"""Operator configuration from the environment: read once at start-up, passed to kopf's settings."""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devops_operator.tenancy import TenancyPolicy

FINALIZER = "devops.fractary.io/finalizer"
ANNOTATION_PREFIX = "devops.fractary.io"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _namespaces(value: str) -> list[str]:
    """A switch that may be narrowed to namespaces: true/yes/1 (all), false/no/0/empty (none), or globs."""
    if value.strip().lower() in ("1", "true", "yes"):
        return ["*"]
    if value.strip().lower() in ("", "0", "false", "no"):
        return []
    return _split(value)


@dataclass(frozen=True)
class OperatorConfig:
    """Every knob of the operator process; each has an environment variable of the same name in caps."""

    # Namespaces to watch (globs allowed, e.g. "team-*"); empty means cluster-wide.
    watch_namespaces: list[str] = field(default_factory=list)
    # Peering coordinates several replicas; off by default: namespace sharding is the scale-out path.
    peering: bool = False
    peering_name: str = "devops-operator"
    # Server-side watch timeout makes the API server close idle watches so kopf re-lists regularly.
    watch_server_timeout: int = 300
    watch_client_timeout: int = 330
    watch_connect_timeout: int = 30
    # Lowest level of kopf-posted Kubernetes Events (DEBUG, INFO, WARNING).
    event_level: int = logging.INFO
    metrics_port: int = 8080
    liveness_endpoint: str = "http://0.0.0.0:8081/healthz"
    # Explicit API server URL (the sandbox, tests); empty means in-cluster config or kubeconfig.
    kube_api_url: str = ""
    # Default AWS endpoint for projects that set none (moto or LocalStack in dev clusters).
    aws_endpoint_url: str = ""
    # How often an object waiting for something outside it (a Secret created later, a fixed IAM policy)
    # is looked at again: by a timer, quietly, not by a failing handler logging ERROR.
    stalled_recheck_seconds: float = 60.0
    # Ready projects re-verify their AWS identities this often (a revoked key or role shows up).
    reverify_seconds: float = 600.0
    # Unexpected failures retry with exponential backoff from kopf's retry count: base * 2^retry,
    # capped, with jitter (docs/architecture.md).
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    # The scheduler (controllers/wakeups.py): its worker threads, how many of them one namespace's work may
    # hold at once, and how long one piece of work may run before its waiter gives up.
    scheduler_workers: int = 8
    scheduler_per_namespace: int = 2
    work_timeout_seconds: float = 300.0
    # The tenancy policy (docs/security.md): a YAML file re-read when it changes, or (embedding code:
    # the sandbox, tests) a policy object. Neither: the built-in defaults.
    tenancy_policy_file: str = ""
    tenancy_policy: TenancyPolicy | None = None
    operator_namespace: str = "devops-operator"
    # Namespaces (globs) where a manual approval counts only while the approval admission policies are
    # installed (docs/security.md): "true" is every namespace, "" or "false" none.
    require_approval_policy: list[str] = field(default_factory=list)
    # How long the operator trusts what it last read of the admission policies before reading them again.
    approval_policy_recheck_seconds: float = 60.0
    # A Role and RoleBinding per runner Job naming exactly the objects it touches (deploy/runner_rbac.py);
    # off (DEVOPS_OPERATOR_RUNNER_RBAC=false) for clusters whose owners bind the runner ServiceAccounts themselves.
    runner_rbac: bool = True

    def requires_approval_policy(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.require_approval_policy)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        level_name = env.get("DEVOPS_OPERATOR_EVENT_LEVEL", "INFO").upper()
        level = logging.getLevelName(level_name)
        if not isinstance(level, int):
            raise ValueError(f"DEVOPS_OPERATOR_EVENT_LEVEL={level_name!r} is not a logging level (INFO, WARNING...)")
        return cls(
            watch_namespaces=_split(env.get("WATCH_NAMESPACES", "")),
            peering=env.get("DEVOPS_OPERATOR_PEERING", "false").lower() in ("1", "true", "yes"),
            peering_name=env.get("DEVOPS_OPERATOR_PEERING_NAME", "devops-operator"),
            watch_server_timeout=int(env.get("DEVOPS_OPERATOR_WATCH_SERVER_TIMEOUT", "300")),
            watch_client_timeout=int(env.get("DEVOPS_OPERATOR_WATCH_CLIENT_TIMEOUT", "330")),
            watch_connect_timeout=int(env.get("DEVOPS_OPERATOR_WATCH_CONNECT_TIMEOUT", "30")),
            event_level=level,
            metrics_port=int(env.get("DEVOPS_OPERATOR_METRICS_PORT", "8080")),
            liveness_endpoint=env.get("DEVOPS_OPERATOR_LIVENESS", "http://0.0.0.0:8081/healthz"),
            kube_api_url=env.get("DEVOPS_OPERATOR_KUBE_URL", ""),
            aws_endpoint_url=env.get("DEVOPS_OPERATOR_AWS_ENDPOINT_URL", ""),
            stalled_recheck_seconds=float(env.get("DEVOPS_OPERATOR_STALLED_RECHECK_SECONDS", "60")),
            reverify_seconds=float(env.get("DEVOPS_OPERATOR_REVERIFY_SECONDS", "600")),
            retry_base_seconds=float(env.get("DEVOPS_OPERATOR_RETRY_BASE_SECONDS", "2")),
            retry_cap_seconds=float(env.get("DEVOPS_OPERATOR_RETRY_CAP_SECONDS", "300")),
            scheduler_workers=int(env.get("DEVOPS_OPERATOR_WORKERS", "8")),
            scheduler_per_namespace=int(env.get("DEVOPS_OPERATOR_WORKERS_PER_NAMESPACE", "2")),
            work_timeout_seconds=float(env.get("DEVOPS_OPERATOR_WORK_TIMEOUT_SECONDS", "300")),
            tenancy_policy_file=env.get("DEVOPS_OPERATOR_TENANCY_POLICY", ""),
            operator_namespace=env.get("DEVOPS_OPERATOR_NAMESPACE") or env.get("POD_NAMESPACE") or "devops-operator",
            require_approval_policy=_namespaces(env.get("DEVOPS_OPERATOR_REQUIRE_APPROVAL_POLICY", "")),
            approval_policy_recheck_seconds=float(env.get("DEVOPS_OPERATOR_APPROVAL_POLICY_RECHECK_SECONDS", "60")),
            runner_rbac=env.get("DEVOPS_OPERATOR_RUNNER_RBAC", "true").lower() not in ("0", "false", "no", "off"),
        )
