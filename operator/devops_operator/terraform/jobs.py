"""Runner Jobs: deterministic names and the Job manifest (pure).

A Job's name is a function of the deployment, the step and what the step works on (the plan request for
plan, the plan id for apply), so the controller finds the Job it already started instead of starting a
second one after a restart: the same apply can never run twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devops_operator.api.common import API_GROUP
from devops_operator.kube.owners import MANAGED_BY, MANAGED_BY_LABEL, adopt
from devops_operator.terraform.request import REQUEST_ENV, RunRequest

DEPLOYMENT_LABEL = f"{API_GROUP}/infradeployment"
STEP_LABEL = f"{API_GROUP}/step"
KEY_LABEL = f"{API_GROUP}/run-key"
MAX_JOB_NAME = 52  # Job names become pod names and a label (63) with a suffix: leave room for it
RUNNER_CONTAINER = "runner"
# Terraform needs time to finish the resource in flight, save state and release the lock after SIGTERM.
TERMINATION_GRACE_SECONDS = 300


def job_name(deployment: str, step: str, key: str) -> str:
    """`<deployment>-<step>-<key>`, the deployment's part shortened so the whole stays a valid name."""
    tail = f"-{step}-{key[:12]}"
    head = deployment[: MAX_JOB_NAME - len(tail)].rstrip("-.")
    return f"{head}{tail}"


@dataclass(frozen=True)
class JobSettings:
    image: str
    service_account: str
    cpu: str
    memory: str
    ephemeral_storage: str | None
    active_deadline_seconds: int
    backoff_limit: int
    env: Sequence[Mapping[str, Any]]  # the operator's container env entries (value or valueFrom), resolved
    tenant_env: Sequence[Mapping[str, Any]] = ()  # the deployment's spec.runner.env, before every entry of ours


def build_job(name: str, request: RunRequest, settings: JobSettings, owner: Mapping[str, Any]) -> dict[str, Any]:
    """The Job manifest for one runner step."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY, DEPLOYMENT_LABEL: request.deployment, STEP_LABEL: request.step,
              KEY_LABEL: name.rsplit("-", 1)[-1]}
    resources: dict[str, str] = {"cpu": settings.cpu, "memory": settings.memory}
    if settings.ephemeral_storage:
        resources["ephemeral-storage"] = settings.ephemeral_storage
    # The tenant's entries first: a later entry of the same name wins in a pod, so ours always do.
    env = [*[dict(e) for e in settings.tenant_env], {"name": REQUEST_ENV, "value": request.to_env()},
           {"name": "DEVOPS_JOB_NAME", "value": name}, {"name": "TF_IN_AUTOMATION", "value": "true"},
           {"name": "TF_INPUT", "value": "false"}, *[dict(e) for e in settings.env]]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": request.namespace, "labels": labels},
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.service_account,
                    # Every step needs the API: it writes its result Secret and, with the Kubernetes backend,
                    # the state and its lock. What the token may reach is the Job's own Role (runner_rbac.py).
                    "automountServiceAccountToken": True,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": RUNNER_CONTAINER,
                        "image": settings.image,
                        "command": ["python", "-m", "devops_operator.runner", request.step],
                        "env": env,
                        "resources": {"requests": resources, "limits": resources},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "tmp", "mountPath": "/tmp"}],
                        "workingDir": "/work",
                    }],
                    "volumes": [{"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    return adopt(job, owner)


@dataclass(frozen=True)
class JobObservation:
    """What a Job's status says (pure view of the object)."""

    name: str
    active: bool
    succeeded: bool
    failed: bool
    reason: str | None
    message: str | None
    start_time: str | None


def observe(job: Mapping[str, Any]) -> JobObservation:
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    complete = conditions.get("Complete", {}).get("status") == "True" or bool(status.get("succeeded"))
    failed_condition = conditions.get("Failed", {})
    failed = failed_condition.get("status") == "True"
    return JobObservation(
        name=str((job.get("metadata") or {}).get("name")),
        active=not complete and not failed,
        succeeded=complete,
        failed=failed,
        reason=failed_condition.get("reason"),
        message=failed_condition.get("message"),
        start_time=status.get("startTime"),
    )
