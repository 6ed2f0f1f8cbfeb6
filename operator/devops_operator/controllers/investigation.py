"""Investigation controller: runs once per generation (and per new requested-at annotation).

Thin: parse the spec, resolve the project (`projectrefs`), hand the run to `ops/investigation/service.py`,
write the outcome. The run (long AWS queries: Logs Insights polls for up to a minute) never occupies kopf's
handler pool: the handler submits it to the operator's one scheduler (`controllers/wakeups.py`: bounded
workers, per-namespace fairness, a timeout) and records what comes back; wake-ups and requested re-runs run
there too. A project that is not Ready yet is waited for quietly (`Wakeups`), bad input is
Stalled with the field and the fix, AWS failures are classified: retried when AWS may answer later,
Stalled with the fix when it will not.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from devops_operator import metrics
from devops_operator.api.common import API_GROUP, API_VERSION, REQUESTED_AT_ANNOTATION
from devops_operator.api.investigation import KIND, InvestigationSpec, RunPhase
from devops_operator.aws.errors import AwsConfigurationError, ProjectNotVerifiedError, classify
from devops_operator.controllers.status import Outcome, apply_outcome, retry_delay, write_outcome
from devops_operator.controllers.wakeups import Wakeups, WorkTimeout
from devops_operator.kube.client import REQUEST_TIMEOUT
from devops_operator.kube.conditions import rfc3339
from devops_operator.ops.investigation.service import InvestigationProblem, run
from devops_operator.projectrefs import ProjectRefError, resolve_project
from devops_operator.projects import field_path
from devops_operator.runtime import Runtime

INVALID_SPEC = "InvalidSpec"
AWS_ERROR = "AwsError"
AWS_UNREACHABLE = "AwsUnreachable"
RECONCILE_ERROR = "ReconcileError"
PROJECT_NOT_READY = "ProjectNotReady"
TERMINAL = frozenset({RunPhase.COMPLETED.value, RunPhase.STALLED.value, RunPhase.FAILED.value})


def needs_run(obj: Mapping[str, Any]) -> bool:
    """Whether the object asks for a run: a new generation, a new requested-at, or a run not finished."""
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if status.get("observedGeneration") != metadata.get("generation"):
        return True
    requested = (metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
    if requested and requested != status.get("lastHandledRequest"):
        return True
    return status.get("phase") not in TERMINAL


def requested_again(obj: Mapping[str, Any]) -> bool:
    """A new requested-at value on an object whose current generation has been handled.

    kopf leaves every annotation under its storage prefix (devops.fractary.io/) out of the diff it
    triggers update handlers with, so the requested-at annotation reaches the operator only as a
    watch event: `run_on_request` picks it up there.
    """
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    requested = (metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
    return (bool(requested) and requested != status.get("lastHandledRequest")
            and status.get("observedGeneration") == metadata.get("generation"))


def _stalled(reason: str, message: str, fields: Mapping[str, Any]) -> Outcome:
    return Outcome.stalled(reason, message, fields)


def evaluate(runtime: Runtime, obj: Mapping[str, Any], now: datetime) -> tuple[Outcome, float | None]:
    """The run's outcome, and when to look again (epoch seconds) if it waits for something."""
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace"))
    requested = (metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
    base: dict[str, Any] = {"startedAt": rfc3339(now)}
    if requested:
        base["lastHandledRequest"] = requested
    try:
        spec = InvestigationSpec.model_validate(dict(obj.get("spec") or {}))
    except ValidationError as exc:
        message = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
        return _stalled(INVALID_SPEC, message, base), None
    try:
        access = resolve_project(runtime, namespace, spec.project_ref, spec.environment)
        result = run(runtime, obj, spec, access, now)
    except ProjectRefError as exc:
        wake = time.time() + runtime.config.stalled_recheck_seconds if exc.waiting else None
        if not exc.stalled:
            return Outcome.reconciling(exc.reason, str(exc), RunPhase.PENDING.value, base), wake
        return _stalled(exc.reason, str(exc), base), wake
    except ProjectNotVerifiedError as exc:
        wake = time.time() + runtime.config.stalled_recheck_seconds
        return Outcome.reconciling(PROJECT_NOT_READY, str(exc), RunPhase.PENDING.value, base), wake
    except InvestigationProblem as exc:
        return _stalled(exc.reason, str(exc), base), None
    except AwsConfigurationError as exc:
        return _stalled(AWS_ERROR, str(exc), base), None
    except (BotoCoreError, ClientError) as exc:
        failure = classify(exc)
        message = f"{failure.summary}: {failure.fix}"
        if failure.retryable:
            return Outcome.reconciling(AWS_UNREACHABLE, message, RunPhase.RUNNING.value, base), None
        return _stalled(AWS_ERROR, message, base), None
    metrics.INVESTIGATION_EVENTS.labels(mode=str(spec.mode)).inc(result.status.match_count or 0)
    fields = {**base, **result.status.to_wire()}
    return Outcome("ready", "Completed", result.message, RunPhase.COMPLETED.value, fields), None


def _record(outcome: Outcome, mode: str) -> str:
    if outcome.state == "ready":
        metrics.INVESTIGATIONS_TOTAL.labels(mode=mode, result="completed").inc()
        return metrics.Outcome.SUCCESS
    if outcome.state == "stalled":
        metrics.INVESTIGATIONS_TOTAL.labels(mode=mode, result="stalled").inc()
        return metrics.Outcome.STALLED
    return metrics.Outcome.RETRY


def _mode(obj: Mapping[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("mode") or "investigate")


async def _evaluate(memo: kopf.Memo, namespace: str, name: str, obj: Mapping[str, Any]) -> tuple[Outcome, float | None]:
    """The run, on a worker of the operator's scheduler (never on kopf's handler pool), within its timeout."""
    runtime: Runtime = memo.runtime
    wakeups: Wakeups | None = memo.get("wakeups")
    snapshot = copy.deepcopy(dict(obj))  # the worker reads a copy, not kopf's live body
    now = datetime.now(UTC)
    if wakeups is None:
        return await asyncio.to_thread(evaluate, runtime, snapshot, now)
    return await wakeups.submit(KIND.kind, namespace, name, lambda: evaluate(runtime, snapshot, now))


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
async def reconcile_investigation(name: str, namespace: str | None, body: kopf.Body, patch: kopf.Patch,
                                  memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Start the run on the scheduler and record what it found; the handler itself makes no AWS call."""
    if not needs_run(body):
        return
    runtime: Runtime = memo.runtime
    with metrics.reconcile_timer(KIND.kind) as result:
        try:
            outcome, wake = await _evaluate(memo, namespace or "", name, body)
        except WorkTimeout as exc:
            outcome, wake = Outcome.reconciling(RECONCILE_ERROR, f"{exc}; retrying", RunPhase.PENDING.value), None
        except Exception as exc:  # the API server refused a read or write, or a bug: status says so, kopf backs off
            outcome, wake = Outcome.reconciling(RECONCILE_ERROR, f"{type(exc).__name__}: {exc}",
                                                RunPhase.PENDING.value), None
        status = write_outcome(KIND.kind, body, patch, outcome)
        result["value"] = _record(outcome, _mode(body))
        wakeups: Wakeups | None = memo.get("wakeups")
        if wake is not None and wakeups is not None:
            wakeups.schedule(KIND.kind, namespace or "", name, wake)
        if outcome.state == "reconciling" and wake is None:
            config = runtime.config
            raise kopf.TemporaryError(status["message"],
                                      delay=retry_delay(retry, base=config.retry_base_seconds,
                                                        cap=config.retry_cap_seconds))


def recheck(runtime: Runtime, wakeups: Wakeups, namespace: str, name: str) -> None:
    """A wake-up: the project it waited for may be Ready now."""
    try:
        obj = CustomObjectsApi(runtime.kube).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, KIND.plural, name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    assert isinstance(obj, dict)
    if not needs_run(obj):
        return
    with metrics.reconcile_timer(KIND.kind) as result:
        outcome, wake = evaluate(runtime, obj, datetime.now(UTC))
        apply_outcome(runtime.kube, KIND, obj, outcome)
        result["value"] = _record(outcome, _mode(obj))
    if wake is None and outcome.state == "reconciling":
        wake = time.time() + runtime.config.stalled_recheck_seconds
    if wake is not None:
        wakeups.schedule(KIND.kind, namespace, name, wake)


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural,
               when=lambda type, body, **_: type != "DELETED" and requested_again(body))
def run_on_request(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Run it again now, on the scheduler (the run is `recheck`, off kopf's handler pool)."""
    wakeups: Wakeups = memo.wakeups
    wakeups.schedule(KIND.kind, namespace or "", name, time.time())


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=lambda type, **_: type == "DELETED")
def forget_investigation(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    wakeups: Wakeups | None = memo.get("wakeups")
    if wakeups is not None:
        wakeups.cancel(KIND.kind, namespace or "", name)
    metrics.forget_resource(KIND.kind, namespace or "", name)
