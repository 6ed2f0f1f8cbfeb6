"""The operator's kopf entry module: settings in one start-up hook, then every controller.

Run it with `python -m devops_operator` or `kopf run -m devops_operator.handlers`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf

from devops_operator import metrics
from devops_operator.config import ANNOTATION_PREFIX, FINALIZER, OperatorConfig
from devops_operator.controllers import (
    devopsproject,
    healthcheck,
    infradeployment,
    investigation,
    remediation,
    unreconciled,  # noqa: F401  (registers the handlers that say a kind is not reconciled yet)
)
from devops_operator.controllers.wakeups import Wakeups
from devops_operator.kube import client as kube_client
from devops_operator.kube.diffbase import CompactDiffBaseStorage
from devops_operator.ops.remediation import service as remediation_service
from devops_operator.runtime import Runtime


def config_from(memo: kopf.Memo) -> OperatorConfig:
    """The config the embedding code passed in `memo.config`, else the process environment."""
    config = memo.get("config")
    return config if isinstance(config, OperatorConfig) else OperatorConfig.from_env()


@kopf.on.startup()
def configure(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    config = config_from(memo)
    settings.persistence.finalizer = FINALIZER
    # Progress and diff-base in our own annotations: status stays ours, readable by GitOps tools.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    # Long spec values are kept as digests there, so the annotation stays small (kube/diffbase.py).
    settings.persistence.diffbase_storage = CompactDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.peering.standalone = not config.peering
    settings.peering.name = config.peering_name
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_client_timeout
    settings.watching.connect_timeout = config.watch_connect_timeout
    settings.posting.level = config.event_level
    # A bad spec is reported as Stalled by the handlers; unexpected errors back off, never spin.
    settings.execution.max_workers = 8
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60, 120, 300]

    kube_client.configure(host=config.kube_api_url or None)
    memo.runtime = Runtime.build(config, kube_client.api_client())
    if config.metrics_port:
        metrics.serve_metrics(config.metrics_port)
    logger.info("devops-operator configured: namespaces=%s peering=%s", config.watch_namespaces or "all",
                config.peering)


@kopf.on.startup()
async def start_background_tasks(memo: kopf.Memo, **_: Any) -> None:
    """The one scheduler every controller looks again through (registered after `configure`, so it runs after).

    No controller runs a loop of its own: project rechecks, HealthCheck checks, deployment rechecks and every
    wake-up are work items of `Wakeups`, with a bounded pool and per-namespace fairness.
    """
    config: OperatorConfig = memo.runtime.config
    wakeups = Wakeups(workers=config.scheduler_workers, per_namespace=config.scheduler_per_namespace,
                      timeout=config.work_timeout_seconds)
    memo.wakeups = wakeups
    memo.project_rechecks = devopsproject.ProjectRechecks(memo.runtime, wakeups)
    memo.health_scheduler = healthcheck.HealthCheckScheduler(memo.runtime, wakeups)
    memo.deployments = infradeployment.DeploymentController(memo.runtime, wakeups)
    wakeups.register(investigation.KIND.kind, lambda ns, name: investigation.recheck(memo.runtime, wakeups, ns, name))
    wakeups.register(remediation.KIND.kind, lambda ns, name: remediation.step(memo.runtime, wakeups, ns, name))
    _watch_approval_policies(memo.runtime, wakeups)
    memo.background_tasks = [asyncio.create_task(wakeups.run(), name="scheduler")]


APPROVAL_POLICIES = "ApprovalPolicies"  # a wake-up of its own: re-read the approval admission policies


def _watch_approval_policies(runtime: Runtime, wakeups: Wakeups) -> None:
    """Re-read the approval admission policies every recheck interval (now, first), so the condition and the
    metric follow them without an object changing; a change wakes the Remediations waiting for approval (the
    deployment controller wakes its own)."""
    policies = runtime.approval_policies

    def reread(_namespace: str, _name: str) -> None:
        try:
            policies.refresh()
        finally:
            wakeups.schedule(APPROVAL_POLICIES, "", "cluster", time.time() + policies.max_age)

    def wake_remediations() -> None:
        for namespace, name in remediation_service.awaiting():
            wakeups.schedule(remediation.KIND.kind, namespace, name, time.time())

    policies.on_change(wake_remediations)
    wakeups.register(APPROVAL_POLICIES, reread)
    wakeups.schedule(APPROVAL_POLICIES, "", "cluster", time.time())


@kopf.on.cleanup()
async def stop_background_tasks(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.get("background_tasks") or []:
        task.cancel()
    await asyncio.gather(*(memo.get("background_tasks") or []), return_exceptions=True)


@kopf.on.login()
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """An explicit API URL (sandbox, tests) wins; otherwise kopf's usual in-cluster/kubeconfig login."""
    config = config_from(memo)
    if config.kube_api_url:
        return kopf.ConnectionInfo(server=config.kube_api_url, insecure=True)
    return kopf.login_via_client(**kwargs)


@kopf.on.probe(id="kubernetes")
def kubernetes_reachable(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness detail: the operator's own client still reaches the API server."""
    runtime: Runtime | None = memo.get("runtime")
    if runtime is None:
        return False
    version = kube_client.call_json(runtime.kube, "GET", "/version", timeout=5)
    return bool(version)
